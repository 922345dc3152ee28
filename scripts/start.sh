#!/usr/bin/env bash
# Starts Butter (`butter up`) on this machine and returns once it is ready (GET /readyz: the
# store open, the local agent reporting, the tiny image added). Where systemd is PID 1 it runs
# as the butter-up unit (logs in the journal); elsewhere (containers, CI sandboxes) in the
# background with its log in a file, as before. Called by `scripts/install.sh --start`;
# idempotent: a Butter already answering is only waited for.
#   BUTTER_DATA_DIR, BUTTER_LOG, BUTTER_UP_ARGS   without systemd: data dir, log file, more flags
#   BUTTER_NO_SYSTEMD=1                           start in the background even where systemd is PID 1
set -euo pipefail
cd "$(dirname "$0")/.."

url=https://127.0.0.1:7700
data=${BUTTER_DATA_DIR:-/var/lib/butter}
log=${BUTTER_LOG:-/var/log/butter.log}
# The first start builds the tiny image (build.sh's own bound is 10 minutes).
wait_s=${BUTTER_READY_TIMEOUT:-900}

# sd_booted(3): PID 1 is systemd when this directory exists. BUTTER_NO_SYSTEMD=1: background anyway.
under_systemd() { [ -z "${BUTTER_NO_SYSTEMD:-}" ] && [ -d /run/systemd/system ]; }

# -k: probes of our own local server, which answers these paths to anyone; the CLI pins the CA.
answers() { curl -ksf -o /dev/null "$url/healthz"; }

# The checks of /readyz that are not ok, one a line.
not_ok() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); for (const c of r.checks) if (c.state !== "ok") console.log(`  ${c.name}: ${c.state}${c.detail ? ` (${c.detail})` : ""}`)' < "$1" 2>/dev/null || cat "$1"
}

# wait_ready ALIVE_CMD: polls /readyz until 200; fails at once when a check failed (waiting
# will not help) or ALIVE_CMD says Butter is gone, and at the bound.
body=$(mktemp)
trap 'rm -f "$body"' EXIT
wait_ready() {
  local code end=$((SECONDS + wait_s))
  while :; do
    code=$(curl -ks -o "$body" -w '%{http_code}' "$url/readyz" || true)
    [ "$code" = 200 ] && return 0
    if [ "$code" = 503 ] && grep -q '"state":"failed"' "$body"; then
      echo "Butter started but is not ready:" >&2; not_ok "$body" >&2; return 1
    fi
    if ! "$@"; then echo "butter up exited" >&2; return 1; fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "Butter is not ready after ${wait_s} s:" >&2; [ "$code" = 503 ] && not_ok "$body" >&2; return 1
    fi
    sleep 0.5
  done
}

unit_alive() { ! systemctl is-failed -q butter-up.service; }

if answers; then
  echo "Butter is already running at $url; waiting until it is ready"
  wait_ready answers
elif under_systemd; then
  [ -n "${BUTTER_DATA_DIR:-}" ] && echo "note: under systemd the data dir is the unit's (/var/lib/butter); flags go in BUTTER_UP_ARGS in /etc/default/butter-up" >&2
  echo "starting butter-up.service (logs: journalctl -u butter-up)"
  systemctl enable --now butter-up.service
  if ! wait_ready unit_alive; then journalctl -u butter-up.service -n 20 --no-pager >&2 || true; exit 1; fi
  data=/var/lib/butter
else
  echo "systemd is not PID 1 here (or BUTTER_NO_SYSTEMD is set): starting butter up in the background (data in $data, log in $log; not restarted if it stops)"
  # BUTTER_UP_ARGS: more flags, as the unit takes them from /etc/default/butter-up.
  # shellcheck disable=SC2086 # word splitting wanted: several flags
  nohup bin/butter up --data-dir "$data" ${BUTTER_UP_ARGS:-} >>"$log" 2>&1 &
  pid=$!
  if ! wait_ready kill -0 "$pid"; then tail -5 "$log" >&2; exit 1; fi
fi
echo "Butter is up at $url; admin token in $data/admin.token; the CLI is logged in."
echo "Try: butter vm create demo --image tiny --wait"
