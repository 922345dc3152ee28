#!/bin/sh
# {{ instance_name }}: a page naming this instance, on port 80.
mkdir -p /srv/www
echo "{{ instance_name }} of {{ service }}.{{ network }}" > /srv/www/index.html
httpd -p 80 -h /srv/www
