#!/usr/bin/env bash
# Checks the Docker setup without a Docker engine (make test runs it):
#   - docker-compose.yml, alone and with docker-compose.scale.yml, parses
#     (docker-compose config);
#   - everything they name exists: build contexts, Dockerfiles, the files
#     each Dockerfile COPYs (and .dockerignore does not hide), bind mounts;
#   - the README's docker compose commands name existing compose files that
#     parse, and its image table gives each image's real command and port,
#     and the URL of each published port.
# Needs docker-compose and PyYAML (scripts/install-deps.sh test).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { printf '[docker-check] error: %s\n' "$*" >&2; exit 1; }

command -v docker-compose >/dev/null 2>&1 ||
    die "docker-compose not found: run scripts/install-deps.sh test"
# docker-compose brings PyYAML for Debian's python3; a python3 of its own
# (pyenv, a venv) may lack it.
PYTHON=""
for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c 'import yaml' >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
done
[ -n "$PYTHON" ] || die "no python3 with PyYAML: run scripts/install-deps.sh test"

exec "$PYTHON" - <<'PYTHON'
import fnmatch
import os
import re
import shlex
import subprocess
import sys

import yaml

problems = []


def problem(text):
    problems.append(text)
    print(f"[docker-check] {text}", file=sys.stderr)


def compose_config(files):
    """The normalised configuration of these compose files, or None."""
    args = ["docker-compose"]
    for name in files:
        args += ["-f", name]
    run = subprocess.run(args + ["config"], capture_output=True, text=True)
    if run.returncode != 0:
        problem(f"{' '.join(args)} config: {run.stderr.strip()}")
        return None
    return yaml.safe_load(run.stdout)


def dockerignore(context):
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.strip().rstrip("/") for line in f
                if line.strip() and not line.startswith("#")]


def ignored(source, patterns):
    parts = os.path.normpath(source).split(os.sep)
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern.lstrip("/").replace("**/", "*"))
               for pattern in patterns for prefix in prefixes
               if not pattern.startswith("!"))


def dockerfile_instructions(path):
    """(instruction, arguments) of each line, continuations joined."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage(instructions):
    start = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[start:]


def command_of(stage):
    cmd = [rest for word, rest in stage if word == "CMD"]
    if not cmd:
        return None
    raw = cmd[-1]
    if raw.startswith("["):
        return shlex.join(yaml.safe_load(raw))
    return raw


def ports_of(stage):
    return [p.split("/")[0] for word, rest in stage if word == "EXPOSE" for p in rest.split()]


checked = {}


def check_dockerfile(context, dockerfile, service):
    path = os.path.join(context, dockerfile)
    if path not in checked:
        checked[path] = read_dockerfile(context, dockerfile, service, path)
    return checked[path]


def read_dockerfile(context, dockerfile, service, path):
    if not os.path.isfile(path):
        problem(f"{service}: Dockerfile {dockerfile} does not exist")
        return None
    patterns = dockerignore(context)
    instructions = dockerfile_instructions(path)
    for word, rest in instructions:
        if word not in ("COPY", "ADD"):
            continue
        args = shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        sources = [a for a in args if not a.startswith("--")][:-1]
        for source in sources:
            if not os.path.exists(os.path.join(context, source)):
                problem(f"{dockerfile}: COPY {source}: no such file in the build context")
            elif ignored(source, patterns):
                problem(f"{dockerfile}: COPY {source}: excluded by .dockerignore")
    return final_stage(instructions)


def check_config(files):
    config = compose_config(files)
    if config is None:
        return {}
    images = {}
    for name, service in (config.get("services") or {}).items():
        build = service.get("build")
        if build:
            context = build.get("context", ".")
            if not os.path.isdir(context):
                problem(f"{name}: build context {context} does not exist")
                continue
            dockerfile = build.get("dockerfile", "Dockerfile")
            stage = check_dockerfile(context, dockerfile, name)
            if stage is not None:
                images[dockerfile] = stage
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and source.startswith(("/", ".")) and not os.path.exists(source):
                problem(f"{name}: bind mount {source} does not exist")
        for env_file in service.get("env_file") or []:
            if not os.path.exists(env_file):
                problem(f"{name}: env_file {env_file} does not exist")
    return images, config


compose_files = sorted(f for f in os.listdir(".") if re.fullmatch(r"docker-compose(\..+)?\.ya?ml", f))
if "docker-compose.yml" not in compose_files:
    problem("docker-compose.yml is missing")
images, base = check_config(["docker-compose.yml"]) or ({}, {})
for extra in compose_files:
    if extra != "docker-compose.yml":
        more, _ = check_config(["docker-compose.yml", extra]) or ({}, {})
        images.update(more)

# The README: its compose commands, its image table, its URLs.
with open("README.md") as f:
    readme = f.read()
commands = re.findall(r"docker[ -]compose((?:\s+-f\s+\S+)*)\s+(?:up|config|build|down|ps|logs)", readme)
if not commands:
    problem("README.md shows no docker compose command")
for flags in commands:
    files = re.findall(r"-f\s+(\S+)", flags) or ["docker-compose.yml"]
    for name in files:
        if not os.path.exists(name):
            problem(f"README.md names {name}, which does not exist")
    if all(os.path.exists(name) for name in files) and len(files) > 0:
        compose_config(files)
for name in compose_files:
    if name not in readme:
        problem(f"README.md does not mention {name}")

rows = {}
for line in readme.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 4:
        for cell in cells:
            match = re.fullmatch(r"`?(docker/[\w.-]+Dockerfile)`?", cell)
            if match:
                rows[match.group(1)] = cells
for dockerfile, stage in images.items():
    row = rows.get(dockerfile)
    if row is None:
        problem(f"README.md has no image table row for {dockerfile}")
        continue
    command = command_of(stage)
    if command is None:
        problem(f"{dockerfile}: no CMD in its final stage")
    elif f"`{command}`" not in row:
        problem(f"README.md says {row} for {dockerfile}, whose command is `{command}`")
    for port in ports_of(stage):
        if port not in row:
            problem(f"README.md says {row} for {dockerfile}, which listens on {port}")
for name, service in (base.get("services") or {}).items():
    for port in service.get("ports") or []:
        text = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}:"
        match = re.match(r"(?:([\d.]+):)?(\d+):", text)
        if match:
            host = match.group(1) or "127.0.0.1"
            if host == "0.0.0.0":
                host = "127.0.0.1"
            url = f"http://{host}:{match.group(2)}/"
            if url not in readme:
                problem(f"README.md does not give {url}, where {name} is published")

if problems:
    print(f"[docker-check] {len(problems)} problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"[docker-check] ok: {', '.join(compose_files)} parse; {len(images)} images match README.md",
      file=sys.stderr)
PYTHON
