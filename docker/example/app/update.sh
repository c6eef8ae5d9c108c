#!/bin/sh
# task.update (on demand, every role): docassemble's `update` program, which installs the
# Python packages the admin asked for so that every server runs the same code. Started
# only by `bosun ctl run update` here, or `bosun ctl fleet run update` on every container
# of the fleet. This example has nothing to install: it says where it ran and exits 0.
set -eu
echo "update: $(hostname) up to date (roles ${CONTAINERROLE:-all})"
