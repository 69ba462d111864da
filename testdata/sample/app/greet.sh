#!/bin/sh
echo "$GREETING from a hoist-built image: $(uname -s), busybox $(busybox | head -1 | cut -d' ' -f2), @WORDS@ words:"
tr '\n' ' ' < /app/words.txt
echo
