#!/usr/bin/env bash
# The RabbitMQ broker of the scale-out task queues (docs/queues.md): Debian's rabbitmq-server (3.10 on bookworm, Erlang 25).
#
#   scripts/rabbitmq.sh install   installs rabbitmq-server with apt-get when it is missing (as root); nothing else
#   scripts/rabbitmq.sh start     starts a private broker on 127.0.0.1 and free ports, its data in a new temp folder;
#                                 waits until it takes connections; prints its AMQP URI, then its management URI.
#                                 Run again after `stop --keep`, it starts the same broker again: same ports, same data.
#   scripts/rabbitmq.sh stop      stops it (SIGTERM, as a service manager would: a clean shutdown) and deletes its data;
#                                 with --keep, keeps data and ports for the next `start`
#
# The package starts no service here (policy-rc.d), and a plain rabbitmq-server would listen on every interface and use
# /var/lib/rabbitmq; this one runs as the caller with everything (data, logs, cookie, its own epmd) in its folder.
# Settings: RABBITMQ_STATE (where PID, ports and URIs are kept; default .tools/rabbitmq/run), RABBITMQ_START_TIMEOUT (seconds
# to wait for the broker to take connections; default 240: it boots in about 10 s on an idle machine of two cores, and
# CI saw a first boot beside the other test lane take more than 60), RABBITMQ_CONSUMER_TIMEOUT_MS
# (the delivery acknowledgement timeout; RabbitMQ's default is 30 minutes), and the management plugin's statistics every
# 500 ms so counts of unacknowledged messages are fresh. Credentials: guest/guest, which RabbitMQ accepts from localhost.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${RABBITMQ_STATE:-$root/.tools/rabbitmq/run}"
bin=/usr/lib/rabbitmq/bin

die() {
  echo "rabbitmq.sh: $*" >&2
  exit 1
}

# alive, free_port, stop_pid
source "$root/scripts/lib/services.sh"

install() {
  [[ -x "$bin/rabbitmq-server" ]] && return
  [[ $(id -u) -eq 0 ]] || die "rabbitmq-server is needed and missing; install it (Debian: apt-get install --no-install-recommends rabbitmq-server) and run this again."
  # Two test processes may install at once: one installs, the other waits and then finds it there.
  mkdir -p "$root/.tools"
  exec 9>"$root/.tools/.rabbitmq-install.lock"
  flock 9
  if [[ ! -x "$bin/rabbitmq-server" ]]; then
    echo "rabbitmq.sh: installing rabbitmq-server with apt-get" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends rabbitmq-server >/dev/null \
      || die "apt-get install rabbitmq-server failed (see above); check that apt reaches its sources, then run this again."
  fi
  flock -u 9
}

start() {
  install
  mkdir -p "$state"
  if [[ -f "$state/pid" ]] && alive "$(cat "$state/pid")"; then
    die "one is already running (PID $(cat "$state/pid"), $(cat "$state/uri" 2>/dev/null)); stop it first with: $0 stop"
  fi

  local data
  if [[ -f "$state/data" && -d "$(cat "$state/data")" ]]; then
    data="$(cat "$state/data")"
  else
    data="$(mktemp -d "${TMPDIR:-/tmp}/skiff-rabbitmq.XXXXXX")"
    echo "$data" >"$state/data"
    echo "$(free_port) $(free_port) $(free_port) $(free_port)" >"$data/ports"
    {
      echo "listeners.tcp.default = 127.0.0.1:$(cut -d' ' -f1 "$data/ports")"
      echo "management.tcp.ip = 127.0.0.1"
      echo "management.tcp.port = $(cut -d' ' -f4 "$data/ports")"
      echo "collect_statistics_interval = 500"
      [[ -n "${RABBITMQ_CONSUMER_TIMEOUT_MS:-}" ]] && echo "consumer_timeout = $RABBITMQ_CONSUMER_TIMEOUT_MS"
    } >"$data/rabbitmq.conf"
    # Channels check the consumer timeout on their tick, once a minute by default: a low timeout needs a faster tick.
    echo "[{rabbit, [{channel_tick_interval, 500}]}]." >"$data/advanced.config"
    echo "[rabbitmq_management]." >"$data/enabled_plugins"
  fi

  local amqp dist epmd management
  read -r amqp dist epmd management <"$data/ports"
  export HOME="$data" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$epmd"
  export RABBITMQ_NODENAME="skiff-$amqp@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist"
  export RABBITMQ_MNESIA_BASE="$data/mnesia" RABBITMQ_LOG_BASE="$data/log" RABBITMQ_PID_FILE="$data/rabbitmq.pid"
  export RABBITMQ_CONFIG_FILE="$data/rabbitmq" RABBITMQ_ADVANCED_CONFIG_FILE="$data/advanced.config" RABBITMQ_ENABLED_PLUGINS_FILE="$data/enabled_plugins"
  mkdir -p "$data/log"

  # Its own epmd, on 127.0.0.1 and a private port, started here so that it is stopped by PID with the broker (one the
  # node started itself would daemonize and outlive it).
  setsid /usr/bin/epmd -address 127.0.0.1 -port "$epmd" </dev/null >"$data/log/epmd.log" 2>&1 &
  echo $! >"$state/epmd.pid"
  setsid "$bin/rabbitmq-server" </dev/null >"$data/log/server.out" 2>&1 &
  echo $! >"$state/pid"
  echo "amqp://guest:guest@127.0.0.1:$amqp/" >"$state/uri"
  echo "http://guest:guest@127.0.0.1:$management/" >"$state/management"

  # The AMQP listener opens once the broker has booted.
  local timeout="${RABBITMQ_START_TIMEOUT:-240}" started=$SECONDS
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$amqp") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$management") 2>/dev/null; then
      echo "rabbitmq.sh: ready after $((SECONDS - started)) s" >&2
      cat "$state/uri" "$state/management"
      return
    fi
    alive "$(cat "$state/pid")" || { local log; log="$(tail -20 "$data/log/server.out")"; stop; die "rabbitmq-server exited before it was ready: $log"; }
    sleep 0.1
  done

  # What the node was doing, for a failure read from CI's output after the folder is gone.
  local log
  log="$(tail -n 30 "$data/log/$RABBITMQ_NODENAME.log" "$data/log/server.out" 2>/dev/null || true)"
  stop
  die "rabbitmq-server was not ready within $timeout s (raise RABBITMQ_START_TIMEOUT on a slow machine); its last log lines:
$log"
}

stop() {
  # The PID is the rabbitmq-server script's; it passes SIGTERM on to the Erlang VM and waits for it.
  stop_pid "$state/pid"
  stop_pid "$state/epmd.pid"
  if [[ "${1:-}" != "--keep" ]]; then
    [[ -f "$state/data" ]] && rm -rf "$(cat "$state/data")"
    rm -f "$state/data"
  fi
  rm -f "$state/uri" "$state/management"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop "${2:-}" ;;
  *) die "usage: $0 install|start|stop [--keep]" ;;
esac
