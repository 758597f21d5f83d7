# zturbo — build everything (CUDA included) on a machine with or without a GPU.
#
#   make deps      install the Debian packages the build needs (idempotent)
#   make           build the library, bin/zturbo, tools and tests into bin/
#   make test      build, then run every test (GPU tests skip without a GPU)
#   make asan      build the CPU tests with ASan+UBSan and run them
#   make fuzz      build the libFuzzer harnesses (clang) and run each briefly
#   make clean
#
# Variables (plain, no auto-detection):
#   CUDA_ARCH   space-separated SM targets of the fat binary
#   CUDA_HOME   CUDA toolkit root
#   FUZZ_SECONDS  seconds per fuzz target in `make fuzz`

CUDA_HOME ?= /usr/local/cuda
CUDA_ARCH ?= sm_80 sm_86 sm_89 sm_90a sm_120
CC ?= gcc
NVCC ?= $(CUDA_HOME)/bin/nvcc
CLANG ?= clang
FUZZ_SECONDS ?= 60

SAN ?= 0
ifeq ($(SAN),1)
BUILD := build/asan
BIN := bin/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1
else
BUILD := build/rel
BIN := bin
SANFLAGS :=
OPT := -O2
endif
# CUDA objects are shared by the normal and the sanitizer builds.
CUBUILD := build/cu

# libevent-dev: the HTTP server of `zturbo serve` (linked statically); curl and nginx: its tests.
DEBIAN_PKGS := build-essential liburing-dev libzstd-dev libpng-dev libxxhash-dev libjansson-dev libevent-dev \
               libjpeg62-turbo-dev clang python3 python3-venv curl nginx

CPPFLAGS := -I. -I$(CUDA_HOME)/include -D_GNU_SOURCE
CFLAGS := -std=c11 $(OPT) -g -Wall -Wextra -Werror -pthread -ffp-contract=off $(SANFLAGS)
NVGENCODE := $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a:sm_%=%),code=$(a))
# sm_90a (Hopper's arch-specific target: wgmma) also compiles the wgmma conv kernel.
NVFLAGS := -O3 -g -std=c++17 -I. $(NVGENCODE) $(if $(filter sm_90a,$(CUDA_ARCH)),-DZT_HAVE_SM90A=1) -Xcompiler -Wall,-Wextra,-Werror,-fPIC \
           --expt-relaxed-constexpr -Werror all-warnings -fmad=false
# Static: what the GPU machine lacks (liburing, libevent, libjpeg-turbo). Dynamic: the rest.
LDLIBS := -Wl,-Bstatic -luring -levent_extra -levent_pthreads -levent_core -ljpeg -Wl,-Bdynamic -lzstd -lpng -lxxhash -ljansson \
          -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart_static \
          -lstdc++ -ldl -lrt -lpthread -lm
LDFLAGS := $(SANFLAGS)

LIB_DIRS := common storage sched stream kernels models api
LIB_C := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_CU := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cu))
LIB_OBJ := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CU:%.cu=$(CUBUILD)/%.o)
LIB := $(BUILD)/libzturbo.a

# Programs: tools/NAME.c or tools/NAME.cu -> bin/NAME; tools/zturbo/*.c -> bin/zturbo
TOOL_C := $(wildcard tools/*.c)
TOOL_CU := $(wildcard tools/*.cu)
TOOLS := $(TOOL_C:tools/%.c=$(BIN)/%) $(TOOL_CU:tools/%.cu=$(BIN)/%)
ZTURBO_C := $(wildcard tools/zturbo/*.c)
ZTURBO_OBJ := $(ZTURBO_C:%.c=$(BUILD)/%.o)

# Tests: tests/test_*.c or tests/test_*.cu -> bin/tests/test_*
TEST_C := $(wildcard tests/test_*.c)
TEST_CU := $(wildcard tests/test_*.cu)
TESTS := $(TEST_C:tests/%.c=$(BIN)/tests/%) $(TEST_CU:tests/%.cu=$(BIN)/tests/%)

# Test builds: fault injection (ZT_IO_FAULT, ZT_PACK_FAULT) is compiled only into
# objects built with -DZT_TEST_HOOKS. The tests and bin/test-zturbo (the CLI the shell
# tests inject faults into) link them ahead of the library; bin/zturbo and
# libzturbo.a have no fault injection.
HOOK_C := storage/reader.c
HOOK_OBJ := $(HOOK_C:%.c=$(BUILD)/hooks/%.o)
ZTURBO_HOOK_OBJ := $(ZTURBO_C:%.c=$(BUILD)/hooks/%.o)

ALL_BINS := $(if $(ZTURBO_C),$(BIN)/zturbo $(BIN)/test-zturbo) $(TOOLS) $(TESTS)

.PHONY: all deps test test-gpu asan fuzz clean print-arch demo
all: print-arch $(ALL_BINS)

print-arch:
	@echo "zturbo: CUDA_ARCH = $(CUDA_ARCH)  (override: make CUDA_ARCH=sm_90a)"

deps:
	@missing=""; for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi
	@command -v $(NVCC) >/dev/null 2>&1 || { echo "deps: nvcc not found at $(NVCC): install the CUDA toolkit or set CUDA_HOME"; exit 1; }

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/hooks/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DZT_TEST_HOOKS $(CFLAGS) -MMD -MP -c $< -o $@

$(CUBUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/zturbo: $(ZTURBO_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(ZTURBO_OBJ) $(LIB) $(LDLIBS)

$(BIN)/test-zturbo: $(ZTURBO_HOOK_OBJ) $(HOOK_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(ZTURBO_HOOK_OBJ) $(HOOK_OBJ) $(LIB) $(LDLIBS)

$(BIN)/%: $(BUILD)/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BIN)/%: $(CUBUILD)/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BIN)/tests/%: $(BUILD)/tests/%.o $(HOOK_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(HOOK_OBJ) $(LIB) $(LDLIBS)

$(BIN)/tests/%: $(CUBUILD)/tests/%.o $(HOOK_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(HOOK_OBJ) $(LIB) $(LDLIBS)

# Keep objects of pattern rules.
.SECONDARY:

# The main job on a machine without the real weights: a tiny random-weight
# checkpoint in the exact Hugging Face layout, one image through the whole
# pipeline (GPU when present, else the CPU backend), written to build/demo.
demo: deps all
	@rm -rf build/demo && mkdir -p build/demo
	$(BIN)/mkmodel --config tiny --seed 1 --dtype bf16 -q -o build/demo/tiny-model
	$(BIN)/zturbo generate -m build/demo/tiny-model -p "a lighthouse on a cliff at sunset" --width 256 --height 256 \
	  --seed 42 -o build/demo/demo.png
	@echo "demo: wrote build/demo/demo.png (random weights: expect structured noise, not a picture)"

test: deps all
	@tests/run $(BIN)

asan: deps
	$(MAKE) SAN=1 all
	@ZT_TEST_SAN=1 tests/run bin/asan

# libFuzzer harnesses: tests/fuzz/fuzz_*.c linked with the GPU-free modules
# (common/, storage/, the tokenizer, the server request parser and the image loader) built by clang with coverage.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIB_C := $(wildcard common/*.c storage/*.c) $(wildcard api/tokenizer*.c) api/server_request.c api/params.c api/image_in.c
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=bin/fuzz/%)
FUZZFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE -Wall -Wextra -Werror
bin/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_C)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZFLAGS) -o $@ $^ -Wl,-Bstatic -luring -ljpeg -Wl,-Bdynamic -lzstd -lpng -lxxhash -ljansson -lpthread -lm

fuzz: deps $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	  n=$$(basename $$f); mkdir -p build/fuzz-corpus/$$n; \
	  seeds=tests/fuzz/seeds/$$n; [ -d $$seeds ] || seeds=; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  if ! $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build/fuzz-$$n- \
	       build/fuzz-corpus/$$n $$seeds > build/fuzz-$$n.log 2>&1; then \
	    tail -n 40 build/fuzz-$$n.log; echo "fuzz: $$n FAILED (input saved as build/fuzz-$$n-*)"; exit 1; fi; \
	  tail -n 3 build/fuzz-$$n.log; \
	done

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
