#!/bin/sh
# Generate configure and Makefile.in; run once on a fresh clone.
exec autoreconf --install --force -W all
