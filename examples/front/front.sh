#!/bin/sh
# {{ instance_name }}: which backends answer, on port 80. Service instances are default-deny:
# a backend answers once the path from this service to it exists (`paths.add(front, internal,
# 80)`, made right after this service), so each is asked again for up to a minute. nc, not
# wget: the tiny image's busybox is static, and its wget crashes.
mkdir -p /srv/www
{% for ip in PrivateIps %}
page=
for try in $(seq 1 30); do
  page=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 {{ ip }} 80 2>/dev/null | tr -d '\r' | sed '1,/^$/d')
  [ -n "$page" ] && break
  sleep 2
done
echo "{{ ip }}: ${page:-no answer}" >> /srv/www/index.html
{% endfor %}
httpd -p 80 -h /srv/www
