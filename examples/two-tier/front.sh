#!/bin/sh
# {{ instance_name }}: port 80; /cgi-bin/front asks {{ Backend }}:8080 each time it is asked.
mkdir -p /srv/www/cgi-bin
cat > /srv/www/cgi-bin/front <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
# The name through busybox's own resolver (nslookup): the tiny image's busybox is static, and
# its wget, resolving through glibc's, crashes; so wget gets the address.
out=$(nslookup -type=a {{ Backend }} 2>&1)
addr=$(echo "$out" | awk '/^Name:/ { n = 1 } n && /^Address/ { print $NF; exit }')
if [ -z "$addr" ]; then
  echo "front {{ instance_name }} got: no address for {{ Backend }} ($(echo "$out" | tr '\n\t' '  '))"
  exit 0
fi
echo "front {{ instance_name }} got: $(wget -q -O - -T 5 "http://$addr:8080/" 2>&1 || echo "no answer from $addr:8080")"
CGI
chmod 755 /srv/www/cgi-bin/front
echo "front {{ instance_name }}" > /srv/www/index.html
httpd -p 80 -h /srv/www && echo "two-tier front: httpd is listening on port 80"
