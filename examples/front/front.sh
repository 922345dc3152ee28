#!/bin/sh
# {{ instance_name }}: which backends answer, on port 80.
mkdir -p /srv/www
{% for ip in PrivateIps %}
echo "{{ ip }}: $(wget -q -O - -T 5 http://{{ ip }}/ || echo no answer)" >> /srv/www/index.html
{% endfor %}
httpd -p 80 -h /srv/www
