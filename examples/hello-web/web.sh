#!/bin/sh
# {{ instance_name }}: a page with the greeting and this instance's name, on port 80.
mkdir -p /srv/www
echo "{{ Greeting }} from {{ instance_name }}" > /srv/www/index.html
httpd -p 80 -h /srv/www && echo "hello-web: httpd is listening on port 80"
