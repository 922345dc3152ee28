#!/bin/sh
# {{ instance_name }}: the back end's page, on port 8080.
mkdir -p /srv/back
echo "back {{ instance_name }} says {{ Token }}" > /srv/back/index.html
httpd -p 8080 -h /srv/back && echo "two-tier back: httpd is listening on port 8080"
