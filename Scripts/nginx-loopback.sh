#!/usr/bin/env bash
# Starts nginx (Debian's) on a loopback port with a throwaway config: one worker, keep-alive, one
# static file (index.html, 612 bytes like nginx's default page). Prints "PORT PID DIR" and leaves it
# running; stop it with `kill PID` (the directory can then be removed). NGINX_ACCESS_LOG=1 logs each
# request to DIR/logs/access.log (tests count them); off by default, as in a benchmark.
# NGINX_ROOT=DIR serves DIR instead of the 612-byte page (Scripts/bench_http.py).
# Usage: Scripts/nginx-loopback.sh [PORT] [WORKERS]
set -euo pipefail
port=${1:-18090}
workers=${2:-1}
PATH="$PATH:/usr/sbin:/sbin"
command -v nginx >/dev/null || { echo "nginx is not installed" >&2; exit 2; }
dir=$(mktemp -d /tmp/rill-nginx.XXXXXX)
chmod 755 "$dir"  # workers run as nobody when started by root
mkdir -p "$dir/html" "$dir/logs" "$dir/temp"
access_log="off"
[[ "${NGINX_ACCESS_LOG:-0}" == 1 ]] && access_log="$dir/logs/access.log"
head -c 612 /dev/zero | tr '\0' 'x' > "$dir/html/index.html"
root="$dir/html"
[[ -n "${NGINX_ROOT:-}" ]] && root="$NGINX_ROOT"
cat > "$dir/nginx.conf" <<CONF
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 19000; }
http {
    access_log $access_log;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$port reuseport;
        root $root;
    }
}
CONF
nginx -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/logs/output.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "$port $pid $dir"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$dir/logs/error.log" >&2; exit 1; }
    sleep 0.05
done
echo "nginx did not start listening on $port" >&2
kill "$pid"
exit 1
