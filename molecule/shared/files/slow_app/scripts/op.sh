#!/bin/bash
# Every operation of the kill scenarios' model: takes half a second, succeeds.
sleep 0.5
