#!/bin/sh
# Placeholder written by the conformance corpus: the source repository does not ship this file.
exit 0
