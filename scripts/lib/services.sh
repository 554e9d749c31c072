# Shared by the scripts that run a private server for tests and development (scripts/rabbitmq.sh, scripts/registry.sh).
# Sourced, not run; the script that sources it defines die().

# True while PID runs; a process that exited but was not yet reaped (a zombie) counts as gone.
alive() {
  local status
  status="$(ps -o stat= -p "$1" 2>/dev/null)" && [[ "$status" != Z* ]]
}

# A port nothing listens on now, below the range the kernel hands out as outgoing connections' own ports: a port from
# that range, free when chosen, was taken by some connection in the seconds a server took to boot (CI: RabbitMQ's
# management listener failed with eaddrinuse). A server that binds its ports again on a restart needs them out of it too.
free_port() {
  local low port
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
  ((low > 11000)) || die "the kernel hands out ports from $low up (net.ipv4.ip_local_port_range), leaving no room below it for a server's ports"
  while true; do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# Stops the process whose PID is in FILE with SIGTERM (a clean shutdown), SIGKILL after 30 s; removes FILE.
stop_pid() {
  local file="$1" pid
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file")"
  if alive "$pid"; then
    kill "$pid"
    local deadline=$((SECONDS + 30))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; fi
  fi
  rm -f "$file"
}
