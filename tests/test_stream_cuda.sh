#!/usr/bin/env bash
# The window's byte invariance on the GPU: test_stream walks every plan with
# the CUDA backend (device slots, copy stream, events) and compares the slot
# contents with the snapshot's unit images. Skips (77) without a GPU.
exec "$ZT_BIN/tests/test_stream" --cuda
