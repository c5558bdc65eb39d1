#!/bin/sh
# EC2 user data for the auto-scaling group's launch template: installs the stickyproxy package
# from the deployment bucket and starts it. The instance profile must allow s3:GetObject on it.
set -eu
PACKAGE_URL="s3://REPLACE-deploy-bucket/stickyproxy_0.1.0_amd64.deb"
ROUTING_SECRET_PARAMETER="/stickyproxy/routing-secret"

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli
aws s3 cp "$PACKAGE_URL" /tmp/stickyproxy.deb
# Every host behind the ALB shares one routing secret, so any of them routes a session alike.
install -d -m 0750 /var/lib/stickyproxy
aws ssm get-parameter --with-decryption --name "$ROUTING_SECRET_PARAMETER" --query Parameter.Value --output text \
  > /var/lib/stickyproxy/routing-secret
chmod 0600 /var/lib/stickyproxy/routing-secret
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/stickyproxy.deb
chown -R stickyproxy:stickyproxy /var/lib/stickyproxy
systemctl enable --now stickyproxy.service
