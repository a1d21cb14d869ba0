#!/usr/bin/python3
"""Check deploy/compose/docker-compose.yml against the services and the Dockerfile.

No Docker engine runs on the development machines, so `docker compose up` cannot be tried
there; this reads the file instead and fails on what would break it:

- every FLYWHEEL_* variable given to a service is one the service reads (its -h output lists
  them all, with defaults), and every variable whose default points at loopback (127.0.0.1 or
  localhost: listen addresses, Kafka, ClickHouse, Redis, NATS, the registry URL) is set, by the
  compose file or by the image (deploy/docker/Dockerfile's ENV), to something else;
- a host named in a value is a compose service, on the port that service listens on, and is in
  depends_on with condition service_healthy, and has a healthcheck;
- each service is built from deploy/docker/Dockerfile with SERVICE=<name>, publishes the port its
  image EXPOSEs, and probes its own /readyz with the image's healthcheck binary;
- the infrastructure agrees with the services: Kafka's advertised listener, ClickHouse's user,
  password and database, NATS with JetStream, Grafana with the ClickHouse plugin, every
  ${VAR} its provisioning files read, and the dashboards where the provider looks for them.

Usage:
  deploy/compose/check.py                 build the six binaries with go and ask each for -h
  deploy/compose/check.py --help-cmd 'podman run --rm localhost/flywheel/{service}:dev -h'
"""

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SERVICES = ["ingest", "features", "registry", "serving", "monitor", "trainer"]
INFRA = {"kafka": 9092, "clickhouse": 9000, "redis": 6379, "nats": 4222, "grafana": 3000}
LOOPBACK = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])")

errors = []


def fail(msg):
    errors.append(msg)


def interpolate(value):
    """Compose interpolation with an empty environment: ${X:-d} and ${X-d} give d, ${X} gives ''."""
    if not isinstance(value, str):
        return value

    def sub(m):
        body = m.group(1)
        for sep in (":-", "-", ":?", "?"):
            if sep in body:
                name, default = body.split(sep, 1)
                return default if "-" in sep else ""
        return ""

    value = re.sub(r"\$\{([^}]*)\}", sub, value.replace("$$", "\0"))
    return value.replace("\0", "$")


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def service_help(help_cmd, name, bindir):
    if help_cmd:
        cmd = shlex.split(help_cmd.replace("{service}", name))
    else:
        cmd = [os.path.join(bindir, name), "-h"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    known = dict(re.findall(r'\(env (FLYWHEEL_[A-Z0-9_]+), default "([^"]*)"\)', out.stdout))
    if not known:
        sys.exit(f"check: `{' '.join(cmd)}` listed no FLYWHEEL_* variables:\n{out.stdout[-2000:]}")
    return known


def build_binaries(bindir):
    go = "go" if subprocess.run(["sh", "-c", "command -v go"], stdout=subprocess.DEVNULL).returncode == 0 else "/usr/local/go/bin/go"
    pkgs = [f"./services/{s}/cmd/{s}" for s in SERVICES]
    subprocess.run([go, "build", "-o", bindir + "/"] + pkgs, cwd=ROOT, check=True)


def dockerfile_stages():
    """The per-service stages of deploy/docker/Dockerfile: ENV, EXPOSE and ENTRYPOINT of each."""
    stages, cur = {}, None
    text = open(os.path.join(ROOT, "deploy/docker/Dockerfile")).read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+\S+\s+AS\s+svc-(\w+)", line, re.I)
        if m:
            cur = stages.setdefault(m.group(1), {"env": {}, "expose": [], "entrypoint": None})
            continue
        if re.match(r"FROM\s", line, re.I):
            cur = None
            continue
        if cur is None:
            continue
        if line.startswith("ENV "):
            cur["env"].update(re.findall(r"(\S+?)=(\S+)", line[4:]))
        elif line.startswith("EXPOSE "):
            cur["expose"] += [int(p.split("/")[0]) for p in line.split()[1:]]
        elif line.startswith("ENTRYPOINT "):
            cur["entrypoint"] = yaml.safe_load(line[len("ENTRYPOINT "):])
    return stages


def port_of(addr):
    m = re.search(r":(\d+)$", addr)
    return int(m.group(1)) if m else None


def hosts_in(value):
    """(host, port) pairs named in a value: host:port, scheme://host:port, comma-separated."""
    out = []
    for part in value.split(","):
        m = re.match(r"^(?:[a-z]+://)?([A-Za-z0-9_.-]+):(\d+)(?:/.*)?$", part.strip())
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compose", default=os.path.join(HERE, "docker-compose.yml"))
    ap.add_argument("--help-cmd", help="command printing a service's -h; {service} is replaced")
    args = ap.parse_args()

    doc = yaml.safe_load(open(args.compose))
    services = doc.get("services") or {}
    volumes = doc.get("volumes") or {}
    stages = dockerfile_stages()

    for name in list(INFRA) + SERVICES:
        if name not in services:
            fail(f"no service {name}")

    # Where each compose service listens inside the network.
    listen = dict(INFRA)
    for s in SERVICES:
        st = stages.get(s)
        if not st:
            fail(f"Dockerfile: no stage svc-{s}")
            continue
        addr = st["env"].get(f"FLYWHEEL_{s.upper()}_ADDR", "")
        if not addr.startswith("0.0.0.0:"):
            fail(f"Dockerfile svc-{s}: FLYWHEEL_{s.upper()}_ADDR={addr!r}, want 0.0.0.0:<port>")
        listen[s] = port_of(addr)
        if listen[s] not in st["expose"]:
            fail(f"Dockerfile svc-{s}: EXPOSE {st['expose']} lacks the listen port {listen[s]}")
        if st["entrypoint"] != [f"/usr/local/bin/{s}"]:
            fail(f"Dockerfile svc-{s}: ENTRYPOINT {st['entrypoint']}, want ['/usr/local/bin/{s}']")

    with tempfile.TemporaryDirectory() as bindir:
        if not args.help_cmd:
            build_binaries(bindir)
        known = {s: service_help(args.help_cmd, s, bindir) for s in SERVICES}

    # ------------------------------------------------------------ the six services
    for s in SERVICES:
        svc = services.get(s)
        if not svc:
            continue
        where = f"service {s}"
        build = svc.get("build") or {}
        ctx = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(args.compose)), build.get("context", ".")))
        if ctx != ROOT:
            fail(f"{where}: build context {ctx} is not the repository root {ROOT}")
        if build.get("dockerfile") != "deploy/docker/Dockerfile":
            fail(f"{where}: build.dockerfile {build.get('dockerfile')!r}, want deploy/docker/Dockerfile")
        if (build.get("args") or {}).get("SERVICE") != s:
            fail(f"{where}: build.args.SERVICE {(build.get('args') or {}).get('SERVICE')!r}, want {s!r}")
        if f"flywheel/{s}:" not in str(svc.get("image", "")):
            fail(f"{where}: image {svc.get('image')!r} is not flywheel/{s}:<tag>")

        env = env_of(svc)
        image_env = stages.get(s, {}).get("env", {})
        for k in env:
            if k.startswith("FLYWHEEL_") and k not in known[s]:
                fail(f"{where}: {k} is not a variable {s} reads (typo, or meant for another service?)")
        for k, default in sorted(known[s].items()):
            if not LOOPBACK.search(default):
                continue
            value = env.get(k, image_env.get(k))
            if value is None:
                fail(f"{where}: {k} is not set; its default {default!r} is loopback, unreachable in a container")
            elif LOOPBACK.search(value):
                fail(f"{where}: {k}={value!r} points at loopback")
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for k, v in env.items():
            if not k.startswith("FLYWHEEL_") or k == f"FLYWHEEL_{s.upper()}_ADDR":
                continue
            for host, port in hosts_in(v):
                if host == "0.0.0.0":
                    continue
                if host not in services:
                    fail(f"{where}: {k}={v!r} names {host}, which is not a compose service")
                    continue
                if listen.get(host) != port:
                    fail(f"{where}: {k}={v!r}: {host} listens on {listen.get(host)}, not {port}")
                if (deps.get(host) or {}).get("condition") != "service_healthy":
                    fail(f"{where}: {k} needs {host}, so depends_on should hold {host}: {{condition: service_healthy}}")

        hc = (svc.get("healthcheck") or {}).get("test")
        want = ["CMD", "/usr/local/bin/healthcheck", f"http://127.0.0.1:{listen.get(s)}/readyz"]
        if hc != want:
            fail(f"{where}: healthcheck test {hc}, want {want}")
        published = set()
        for p in svc.get("ports") or []:
            published.add(int(str(p).rsplit(":", 1)[-1].split("/")[0]))
        if set(stages.get(s, {}).get("expose", [])) - published:
            fail(f"{where}: ports {sorted(published)} do not publish every EXPOSEd port {stages.get(s, {}).get('expose')}")

    # ------------------------------------------------------------ every service
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for d, cond in (deps.items() if isinstance(deps, dict) else [(d, {}) for d in deps]):
            if d not in services:
                fail(f"service {name}: depends_on {d}, which does not exist")
            elif (cond or {}).get("condition") == "service_healthy" and not services[d].get("healthcheck"):
                fail(f"service {name}: waits for {d} to be healthy, but {d} has no healthcheck")
        for v in svc.get("volumes") or []:
            src = str(v).split(":", 1)[0]
            if src.startswith((".", "/")):
                path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(args.compose)), src))
                if not os.path.exists(path):
                    fail(f"service {name}: bind mount {src} does not exist ({path})")
            elif src not in volumes:
                fail(f"service {name}: volume {src} is not declared under volumes:")
        if not svc.get("healthcheck") and name in INFRA:
            fail(f"service {name}: no healthcheck")

    # ------------------------------------------------------------ infrastructure agrees
    kenv = env_of(services.get("kafka", {}))
    adv = kenv.get("KAFKA_ADVERTISED_LISTENERS", "")
    if "PLAINTEXT://kafka:9092" not in adv:
        fail(f"kafka: KAFKA_ADVERTISED_LISTENERS={adv!r} does not advertise kafka:9092 to the services")
    if "broker" not in kenv.get("KAFKA_PROCESS_ROLES", "") or "controller" not in kenv.get("KAFKA_PROCESS_ROLES", ""):
        fail("kafka: not a KRaft broker+controller (KAFKA_PROCESS_ROLES)")
    if not re.fullmatch(r"[A-Za-z0-9_-]{22}", kenv.get("CLUSTER_ID", "")):
        fail(f"kafka: CLUSTER_ID {kenv.get('CLUSTER_ID')!r} is not a 22-character base64url UUID")

    cenv = env_of(services.get("clickhouse", {}))
    for s in SERVICES + ["grafana"]:
        env = env_of(services.get(s, {}))
        if "FLYWHEEL_CLICKHOUSE_ADDR" in env or s == "grafana":
            if env.get("FLYWHEEL_CLICKHOUSE_USER") != cenv.get("CLICKHOUSE_USER"):
                fail(f"{s}: FLYWHEEL_CLICKHOUSE_USER {env.get('FLYWHEEL_CLICKHOUSE_USER')!r} is not clickhouse's CLICKHOUSE_USER {cenv.get('CLICKHOUSE_USER')!r}")
            if env.get("FLYWHEEL_CLICKHOUSE_PASSWORD") != cenv.get("CLICKHOUSE_PASSWORD"):
                fail(f"{s}: FLYWHEEL_CLICKHOUSE_PASSWORD differs from clickhouse's CLICKHOUSE_PASSWORD")
            if env.get("FLYWHEEL_CLICKHOUSE_DATABASE", "flywheel") != cenv.get("CLICKHOUSE_DB", "flywheel"):
                fail(f"{s}: FLYWHEEL_CLICKHOUSE_DATABASE is not clickhouse's CLICKHOUSE_DB")

    ncmd = services.get("nats", {}).get("command") or []
    if "-js" not in ncmd and "--jetstream" not in ncmd:
        fail(f"nats: command {ncmd} does not enable JetStream (-js)")

    g = services.get("grafana", {})
    genv = env_of(g)
    if "grafana-clickhouse-datasource" not in genv.get("GF_INSTALL_PLUGINS", "") + genv.get("GF_PLUGINS_PREINSTALL", ""):
        fail("grafana: the grafana-clickhouse-datasource plugin is not installed (GF_INSTALL_PLUGINS)")
    mounts = {}
    for v in g.get("volumes") or []:
        parts = str(v).split(":")
        mounts[parts[1]] = parts[0]
    prov = os.path.join(ROOT, "deploy/grafana/provisioning")
    for f in glob.glob(os.path.join(prov, "*", "*.yaml")):
        sub = os.path.basename(os.path.dirname(f))
        target = f"/etc/grafana/provisioning/{sub}"
        src = mounts.get(target)
        if src is None or os.path.normpath(os.path.join(HERE, src)) != os.path.dirname(f):
            fail(f"grafana: {os.path.relpath(os.path.dirname(f), ROOT)} is not mounted at {target}")
        text = re.sub(r"#.*", "", open(f).read())
        for var in sorted(set(re.findall(r"\$\{(\w+)\}", text))):
            if var not in genv:
                fail(f"grafana: {os.path.relpath(f, ROOT)} reads ${{{var}}}, which grafana's environment does not set")
        for p in (yaml.safe_load(open(f)) or {}).get("providers") or []:
            path = (p.get("options") or {}).get("path")
            if path and os.path.normpath(os.path.join(HERE, mounts.get(path, "/nonexistent"))) != os.path.join(ROOT, "deploy/grafana/dashboards"):
                fail(f"grafana: the dashboard provider reads {path}, where deploy/grafana/dashboards is not mounted")
    if genv.get("FLYWHEEL_CLICKHOUSE_HOST") not in services or genv.get("FLYWHEEL_CLICKHOUSE_PORT") != "9000":
        fail("grafana: the data source must reach clickhouse:9000 (native protocol)")

    if errors:
        for e in errors:
            print("compose check:", e, file=sys.stderr)
        sys.exit(1)
    print(f"compose check: {args.compose}: {len(services)} services, every variable known and reachable, "
          f"healthchecks and depends_on consistent")


if __name__ == "__main__":
    main()
