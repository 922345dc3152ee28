#!/bin/sh
# {{ instance_name }}: port 80; /cgi-bin/front asks {{ Backend }}:8080 each time it is asked.
mkdir -p /srv/www/cgi-bin
cat > /srv/www/cgi-bin/front <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "front {{ instance_name }} got: $(wget -q -O - -T 5 http://{{ Backend }}:8080/ 2>&1 || echo no answer)"
CGI
chmod 755 /srv/www/cgi-bin/front
echo "front {{ instance_name }}" > /srv/www/index.html
httpd -p 80 -h /srv/www && echo "two-tier front: httpd is listening on port 80"
