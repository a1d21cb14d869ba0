package app

import "runtime/debug"

// Version describes the running build from Go's build info: the module version and VCS
// revision (recorded in model lineage and printed by `flywheel version`).
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}
