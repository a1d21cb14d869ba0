package httpapi

import (
	"sort"
	"strconv"

	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// The JSON shapes of MLflow's REST API 2.0 (proto field names, int64 as JSON numbers, as
// MLflow's server writes them).

type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func keyValues(m map[string]string) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		out = append(out, keyValue{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func tagMap(kvs []keyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

type experimentJSON struct {
	ExperimentID     string     `json:"experiment_id"`
	Name             string     `json:"name"`
	ArtifactLocation string     `json:"artifact_location"`
	LifecycleStage   string     `json:"lifecycle_stage"`
	LastUpdateTime   int64      `json:"last_update_time"`
	CreationTime     int64      `json:"creation_time"`
	Tags             []keyValue `json:"tags,omitempty"`
}

func experimentOut(e store.Experiment) experimentJSON {
	return experimentJSON{ExperimentID: e.ID, Name: e.Name, ArtifactLocation: e.ArtifactLocation,
		LifecycleStage: e.LifecycleStage, LastUpdateTime: e.LastUpdateTime, CreationTime: e.CreationTime,
		Tags: keyValues(e.Tags)}
}

type runInfoJSON struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	RunName        string `json:"run_name"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        *int64 `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

type metricJSON struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

type runDataJSON struct {
	Metrics []metricJSON `json:"metrics,omitempty"`
	Params  []keyValue   `json:"params,omitempty"`
	Tags    []keyValue   `json:"tags,omitempty"`
}

type datasetInputJSON struct {
	Tags    []keyValue    `json:"tags,omitempty"`
	Dataset store.Dataset `json:"dataset"`
}

type runInputsJSON struct {
	DatasetInputs []datasetInputJSON `json:"dataset_inputs,omitempty"`
}

type runJSON struct {
	Info   runInfoJSON   `json:"info"`
	Data   runDataJSON   `json:"data"`
	Inputs runInputsJSON `json:"inputs"`
}

func runInfoOut(r store.Run) runInfoJSON {
	return runInfoJSON{RunID: r.ID, RunUUID: r.ID, RunName: r.Name, ExperimentID: r.ExperimentID, UserID: r.UserID,
		Status: r.Status, StartTime: r.StartTime, EndTime: r.EndTime, ArtifactURI: r.ArtifactURI, LifecycleStage: r.LifecycleStage}
}

func runOut(r store.Run) runJSON {
	out := runJSON{Info: runInfoOut(r), Data: runDataJSON{Params: keyValues(r.Params), Tags: keyValues(r.Tags)}}
	for _, m := range r.Metrics {
		out.Data.Metrics = append(out.Data.Metrics, metricJSON(m))
	}
	sort.Slice(out.Data.Metrics, func(i, j int) bool { return out.Data.Metrics[i].Key < out.Data.Metrics[j].Key })
	for _, in := range r.Inputs {
		out.Inputs.DatasetInputs = append(out.Inputs.DatasetInputs, datasetInputJSON{Tags: keyValues(in.Tags), Dataset: in.Dataset})
	}
	return out
}

type aliasJSON struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type modelVersionJSON struct {
	Name                 string     `json:"name"`
	Version              string     `json:"version"`
	CreationTimestamp    int64      `json:"creation_timestamp"`
	LastUpdatedTimestamp int64      `json:"last_updated_timestamp"`
	UserID               string     `json:"user_id,omitempty"`
	CurrentStage         string     `json:"current_stage"`
	Description          string     `json:"description,omitempty"`
	Source               string     `json:"source,omitempty"`
	RunID                string     `json:"run_id,omitempty"`
	Status               string     `json:"status"`
	Tags                 []keyValue `json:"tags,omitempty"`
	RunLink              string     `json:"run_link,omitempty"`
	Aliases              []string   `json:"aliases,omitempty"`
}

func versionOut(v store.Version, aliases []string) modelVersionJSON {
	return modelVersionJSON{Name: v.Name, Version: strconv.Itoa(v.Version), CreationTimestamp: v.CreationTimestamp,
		LastUpdatedTimestamp: v.LastUpdatedTimestamp, UserID: v.UserID, CurrentStage: "None", Description: v.Description,
		Source: v.Source, RunID: v.RunID, Status: "READY", Tags: keyValues(v.Tags), RunLink: v.RunLink, Aliases: aliases}
}

type registeredModelJSON struct {
	Name                 string             `json:"name"`
	CreationTimestamp    int64              `json:"creation_timestamp"`
	LastUpdatedTimestamp int64              `json:"last_updated_timestamp"`
	UserID               string             `json:"user_id,omitempty"`
	Description          string             `json:"description,omitempty"`
	LatestVersions       []modelVersionJSON `json:"latest_versions,omitempty"`
	Tags                 []keyValue         `json:"tags,omitempty"`
	Aliases              []aliasJSON        `json:"aliases,omitempty"`
}

// modelOut shapes a model with its aliases and its latest version (MLflow lists the latest
// version per stage; without stages that is the newest version).
func modelOut(m store.Model, latest *store.Version, aliases []store.AliasMove) registeredModelJSON {
	out := registeredModelJSON{Name: m.Name, CreationTimestamp: m.CreationTimestamp, LastUpdatedTimestamp: m.LastUpdatedTimestamp,
		UserID: m.UserID, Description: m.Description, Tags: keyValues(m.Tags)}
	for _, a := range aliases {
		out.Aliases = append(out.Aliases, aliasJSON{Alias: a.Alias, Version: strconv.Itoa(a.Version)})
	}
	if latest != nil {
		out.LatestVersions = []modelVersionJSON{versionOut(*latest, aliasesOf(aliases, latest.Version))}
	}
	return out
}

func aliasesOf(aliases []store.AliasMove, version int) []string {
	var out []string
	for _, a := range aliases {
		if a.Version == version {
			out = append(out, a.Alias)
		}
	}
	return out
}
