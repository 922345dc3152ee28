#!/bin/sh
# {{ instance_name }}: port 80; /cgi-bin/front asks {{ Backend }}:8080 each time it is asked.
mkdir -p /srv/www/cgi-bin
cat > /srv/www/cgi-bin/front <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
# The tiny image's busybox is static: its wget crashes (glibc's NSS cannot load there), so the
# name goes through busybox's own resolver (nslookup) and the request through nc.
out=$(nslookup -type=a {{ Backend }} 2>&1)
addr=$(echo "$out" | awk '/^Name:/ { n = 1 } n && /^Address/ { print $NF; exit }')
if [ -z "$addr" ]; then
  echo "front {{ instance_name }} got: no address for {{ Backend }} ($(echo "$out" | tr '\n\t' '  '))"
  exit 0
fi
page=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 "$addr" 8080 2>/dev/null | tr -d '\r' | sed '1,/^$/d')
echo "front {{ instance_name }} got: ${page:-no answer from $addr:8080}"
CGI
chmod 755 /srv/www/cgi-bin/front
echo "front {{ instance_name }}" > /srv/www/index.html
httpd -p 80 -h /srv/www && echo "two-tier front: httpd is listening on port 80"
