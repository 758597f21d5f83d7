# zturbo — build on a machine with or without a GPU.
#
#   make demo      library + bin/zturbo + bin/mkmodel, then one image of a tiny random checkpoint
#   make test      bin/zturbo, bin/mkmodel and the test programs, then every test (offline)
#   make test-online  the tests that fetch from PyPI (the tokenizer against Hugging Face
#                  tokenizers, into build/tokenizer-venv; the server against the requests and
#                  openai clients, into ~/.cache/zturbo/serve-venv); CI runs it
#   make           everything: also the benchmarks (kbench, attnbench, bench-io)
#   make asan      the test programs with ASan+UBSan (bin/asan), then the C tests
#   make fuzz      the libFuzzer harnesses (clang), each run for FUZZ_SECONDS
#   make deps      the Debian packages of the build (deps-test: + python3, curl, nginx;
#                  deps-online: + python3-venv; deps-fuzz: + clang); each target runs the one it needs
#   make clean
#
# Parallel by default (-j<number of CPUs>; -jN overrides). One progress line per
# step ("[12/80] CC storage/store.c"); V=1 prints the full commands instead.
#
# Variables:
#   CUDA_ARCH     SM targets. Default: the GPUs nvidia-smi reports (printed),
#                 else the fat set CUDA_ARCH_FAT (see "CUDA architectures" below)
#   CUDA_HOME     CUDA toolkit root
#   FUZZ_SECONDS  seconds per fuzz target in `make fuzz`

CUDA_HOME ?= /usr/local/cuda
ifeq ($(origin CC),default)
CC := gcc
endif
NVCC ?= $(CUDA_HOME)/bin/nvcc
CLANG ?= clang
FUZZ_SECONDS ?= 60
V ?= 0

ZT_NPROC := $(shell nproc 2>/dev/null || echo 2)
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(ZT_NPROC)
endif
MAKEFLAGS += --no-print-directory

# `make asan` builds into bin/asan with the sanitizers in this same make, so
# it runs alone.
ifneq ($(filter asan,$(MAKECMDGOALS)),)
ifneq ($(filter-out asan deps deps-test,$(MAKECMDGOALS)),)
$(error `make asan` runs alone (it builds the sanitizer variant into bin/asan))
endif
SAN := 1
endif
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

# ---- CUDA architectures ------------------------------------------------------
# With a GPU: its compute capability (nvidia-smi), 9.0 as sm_90a (the wgmma
# kernels). Without one, CUDA_ARCH_FAT: sm_80 SASS also runs on every 8.x card
# (8.6 RTX 30xx, 8.7, 8.9 RTX 40xx: binary compatible within a major version),
# sm_90a is Hopper's wgmma fast path, sm_120 the RTX 50xx cards. PTX of the
# oldest and the newest portable target is embedded as well (nvcc makes it on
# the way to the SASS): the driver compiles compute_80 PTX for 10.x/11.x cards
# (B200, Thor) and compute_120 PTX for cards newer than this toolkit knows.
# Each target gets its own front-end pass: kernels size themselves to the
# target's SM (__CUDA_ARCH__: 1536 threads per SM on 8.6/8.9/12.x, 2048 on
# 8.0/9.0). The cost of each target on a 2-core machine is in the README.
# Turing (7.5: RTX 20xx, GTX 16xx, T4) runs the fp16 path alone: CUDA_ARCH=sm_75
# (also its compute_75 PTX, which newer cards JIT-compile: how the suite tests
# it on an H200); the fat set has no sm_75. Cards below 7.5 have no compute
# path: zturbo refuses them at start.
CUDA_ARCH_FAT := sm_80 sm_90a sm_120
ifeq ($(origin CUDA_ARCH),undefined)
# "86 90": the distinct compute capabilities of this machine's GPUs
ZT_GPU_CAPS := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d ' .\r' | grep -E '^[0-9]+$$' | sort -u)
ifneq ($(ZT_GPU_CAPS),)
# the ones a build can serve: 7.5 (Turing: the fp16 path only) and up, known to this nvcc
ZT_GPU_SERVED := $(shell known="$$($(NVCC) --list-gpu-arch 2>/dev/null)"; \
  for c in $(ZT_GPU_CAPS); do [ $$c -ge 75 ] && echo "$$known" | grep -qx compute_$$c && echo $$c; done)
endif
ifeq ($(ZT_GPU_CAPS),)
ifneq ($(MAKECMDGOALS),)
ifeq ($(filter-out test asan test-online,$(MAKECMDGOALS)),)
# only tests without a GPU: their CUDA code never runs (the GPU tests skip), so one target is enough
ZT_TESTS_ONLY := 1
endif
endif
ifeq ($(ZT_TESTS_ONLY),1)
CUDA_ARCH := sm_80
ZT_ARCH_WHY := compute_80 PTX only, for the tests (no GPU found: the CUDA tests skip; make all and make demo build the default set)
else
CUDA_ARCH := $(CUDA_ARCH_FAT)
ZT_ARCH_WHY := the default set (no GPU found)
endif
else ifeq ($(ZT_GPU_SERVED),$(ZT_GPU_CAPS))
CUDA_ARCH := $(foreach c,$(ZT_GPU_CAPS),$(if $(filter 90,$(c)),sm_90a,sm_$(c)))
ZT_ARCH_WHY := this machine's GPU (compute capability $(ZT_GPU_CAPS))
else
CUDA_ARCH := $(CUDA_ARCH_FAT)
ZT_ARCH_WHY := the default set: compute capability $(ZT_GPU_CAPS) found, which no build target or this nvcc serves
endif
else
ZT_ARCH_WHY := as given
endif
# PTX for the lowest and the highest non-arch-specific target.
ZT_ARCH_SORTED := $(shell printf '%s\n' $(patsubst sm_%,%,$(filter-out %a,$(CUDA_ARCH))) | sort -n)
ZT_PTX_ARCHS := $(firstword $(ZT_ARCH_SORTED)) $(lastword $(ZT_ARCH_SORTED))
ZT_COMMA := ,
gencode = -gencode arch=compute_$(1),code=$(if $(filter $(1),$(ZT_PTX_ARCHS)),[sm_$(1)$(ZT_COMMA)compute_$(1)],sm_$(1))
NVGENCODE := $(foreach a,$(CUDA_ARCH),$(call gencode,$(a:sm_%=%)))
ifeq ($(ZT_TESTS_ONLY),1)
NVGENCODE := -gencode arch=compute_80,code=compute_80 # PTX only: nothing runs it here, and ptxas is ~40% of nvcc's time
endif
# Each nvcc compiles its targets in parallel (cuda_norm.cu alone is most of the work).
NVTHREADS := $(words $(CUDA_ARCH))

# libevent-dev: the HTTP server of `zturbo serve` (linked statically); curl and nginx: its tests.
DEBIAN_PKGS := build-essential liburing-dev libzstd-dev libpng-dev libxxhash-dev libjansson-dev libevent-dev \
               libjpeg62-turbo-dev
DEBIAN_PKGS_TEST := python3 curl nginx
DEBIAN_PKGS_ONLINE := python3 python3-venv
DEBIAN_PKGS_FUZZ := clang

CPPFLAGS := -I. -I$(CUDA_HOME)/include -D_GNU_SOURCE
CFLAGS := -std=c11 $(OPT) -g -Wall -Wextra -Werror -pthread -ffp-contract=off $(SANFLAGS)
# sm_90a (Hopper's arch-specific target: wgmma) also compiles the wgmma kernels.
NVFLAGS := -O3 -g -std=c++17 -I. $(NVGENCODE) --threads $(NVTHREADS) $(if $(filter sm_90a,$(CUDA_ARCH)),-DZT_HAVE_SM90A=1) \
           -Xcompiler -Wall,-Wextra,-Werror,-fPIC --expt-relaxed-constexpr -Werror all-warnings -fmad=false
# Static: what the GPU machine lacks (liburing, libevent, libjpeg-turbo). Dynamic: the rest.
LDLIBS := -Wl,-Bstatic -luring -levent_extra -levent_pthreads -levent_core -ljpeg -Wl,-Bdynamic -lzstd -lpng -lxxhash -ljansson \
          -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart_static \
          -lstdc++ -ldl -lrt -lpthread -lm
LDFLAGS := $(SANFLAGS)

LIB_DIRS := common storage sched stream kernels models api
LIB_C := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_CU := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cu))
# CUDA objects first, the slowest (cuda_norm.cu: half of the CUDA work) at the
# head: make -j starts prerequisites in this order, and it would otherwise be
# the one job left running at the end.
ZT_CU_SLOW := kernels/cuda_norm.cu
LIB_OBJ := $(patsubst %.cu,$(CUBUILD)/%.o,$(filter $(ZT_CU_SLOW),$(LIB_CU)) $(filter-out $(ZT_CU_SLOW),$(LIB_CU))) \
           $(LIB_C:%.c=$(BUILD)/%.o)
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

# Test builds: test hooks (a simulated GPU, fault injection) are compiled only
# into objects built with -DZT_TEST_HOOKS. The tests and bin/test-zturbo (the
# CLI the shell tests use for them) link these ahead of the library;
# bin/zturbo and libzturbo.a have no hooks.
HOOK_C := storage/reader.c storage/store_pack.c kernels/ops.c
HOOK_OBJ := $(HOOK_C:%.c=$(BUILD)/hooks/%.o)
ZTURBO_HOOK_OBJ := $(ZTURBO_C:%.c=$(BUILD)/hooks/%.o)

ALL_BINS := $(BIN)/zturbo $(BIN)/test-zturbo $(TOOLS) $(TESTS)
DEMO_BINS := $(BIN)/zturbo $(BIN)/mkmodel
TEST_BINS := $(BIN)/zturbo $(BIN)/test-zturbo $(BIN)/mkmodel $(TESTS)

# demo/test/asan compile only once their packages are there (make -j would
# start compiling next to the install otherwise).
ZT_NEEDS_DEPS := $(if $(filter test,$(MAKECMDGOALS)),deps-test,$(if $(filter test-online,$(MAKECMDGOALS)),deps-online,$(if $(filter demo asan,$(MAKECMDGOALS)),deps)))

# Objects are rebuilt when their flags change (the architectures above, SAN;
# not the compiler command, so that `CC="ccache gcc"` reuses them).
ZT_FLAGS_C := $(BUILD)/.flags
ZT_FLAGS_CU := $(CUBUILD)/.flags
ZT_DRYRUN ?= $(findstring n,$(firstword -$(MAKEFLAGS)))
ifeq ($(ZT_DRYRUN),)
$(shell mkdir -p $(BUILD) $(CUBUILD))
ifneq ($(file <$(ZT_FLAGS_C)),$(CPPFLAGS) $(CFLAGS))
$(file >$(ZT_FLAGS_C),$(CPPFLAGS) $(CFLAGS))
endif
ifneq ($(file <$(ZT_FLAGS_CU)),$(NVFLAGS))
$(file >$(ZT_FLAGS_CU),$(NVFLAGS))
endif
endif
$(ZT_FLAGS_C) $(ZT_FLAGS_CU): ;

# ---- output: one line per step, or the commands with V=1 ----------------------
# [k/n]: k counts the steps started by this make (recipes are expanded one at a
# time, in the make process), n is what a dry run (make -n) of the same goals
# finds: the steps that are out of date (it gets this make's command-line
# variables, and leaves the flag stamps alone).
ifeq ($(V),1)
Q :=
else
Q := @
endif
ifndef ZT_NSTEPS
ZT_NSTEPS := $(shell $(MAKE) -n ZT_NSTEPS=0 ZT_DRYRUN=1 $(-*-command-variables-*-) $(MAKECMDGOALS) 2>/dev/null | grep -c "^echo '\[")
endif
ZT_TICKS :=
step = $(eval ZT_TICKS += x)@echo '[$(words $(ZT_TICKS))/$(ZT_NSTEPS)] $(1) $(2)'

.PHONY: all deps deps-test deps-online deps-fuzz test test-online asan fuzz clean print-arch demo
all: print-arch $(ALL_BINS)

print-arch:
	@echo "zturbo: CUDA_ARCH = $(CUDA_ARCH): $(ZT_ARCH_WHY)$(if $(filter 0,$(V)),; V=1 shows the commands)"

# deps NAME, packages: install what is missing (as root) or print the command.
define deps_install
@missing=""; for p in $(2); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
if [ -z "$$missing" ]; then echo "$(1): all Debian packages present"; \
elif [ "$$(id -u)" = 0 ]; then echo "$(1): installing$$missing"; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
else echo "$(1): missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi
endef
deps:
	$(call deps_install,deps,$(DEBIAN_PKGS))
	@command -v $(NVCC) >/dev/null 2>&1 || { echo "deps: nvcc not found at $(NVCC): install the CUDA toolkit or set CUDA_HOME"; exit 1; }
deps-test: deps
	$(call deps_install,deps-test,$(DEBIAN_PKGS_TEST))
deps-online: deps
	$(call deps_install,deps-online,$(DEBIAN_PKGS_ONLINE))
deps-fuzz: deps
	$(call deps_install,deps-fuzz,$(DEBIAN_PKGS_FUZZ))

$(BUILD)/%.o: %.c $(ZT_FLAGS_C) | $(ZT_NEEDS_DEPS)
	$(call step,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/hooks/%.o: %.c $(ZT_FLAGS_C) | $(ZT_NEEDS_DEPS)
	$(call step,CC,$< (test hooks))
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -DZT_TEST_HOOKS $(CFLAGS) -MMD -MP -c $< -o $@

# The GPU check names the build's targets (kernels/ops.c).
$(BUILD)/kernels/ops.o $(BUILD)/hooks/kernels/ops.o: CPPFLAGS += -DZT_CUDA_ARCHS='"$(CUDA_ARCH)"'
$(BUILD)/kernels/ops.o $(BUILD)/hooks/kernels/ops.o: $(ZT_FLAGS_CU)

$(CUBUILD)/%.o: %.cu $(ZT_FLAGS_CU) | $(ZT_NEEDS_DEPS)
	$(call step,NVCC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	$(call step,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/zturbo: $(LIB) $(ZTURBO_OBJ)
	$(call step,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(ZTURBO_OBJ) $(LIB) $(LDLIBS)

$(BIN)/test-zturbo: $(LIB) $(ZTURBO_HOOK_OBJ) $(HOOK_OBJ)
	$(call step,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(ZTURBO_HOOK_OBJ) $(HOOK_OBJ) $(LIB) $(LDLIBS)

$(BIN)/%: $(BUILD)/tools/%.o $(LIB)
	$(call step,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BIN)/%: $(CUBUILD)/tools/%.o $(LIB)
	$(call step,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BIN)/tests/%: $(BUILD)/tests/%.o $(HOOK_OBJ) $(LIB)
	$(call step,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(HOOK_OBJ) $(LIB) $(LDLIBS)

$(BIN)/tests/%: $(CUBUILD)/tests/%.o $(HOOK_OBJ) $(LIB)
	$(call step,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(HOOK_OBJ) $(LIB) $(LDLIBS)

# Keep objects of pattern rules.
.SECONDARY:

# The main job on a machine without the real weights: a tiny random-weight
# checkpoint in the exact Hugging Face layout, packed into a block store, and
# one image from the store alone (GPU when present, else the CPU backend),
# written to build/demo.
demo: deps print-arch $(DEMO_BINS)
	@rm -rf build/demo && mkdir -p build/demo
	$(call step,RUN,mkmodel --config tiny -o build/demo/tiny-model)
	$(Q)$(BIN)/mkmodel --config tiny --seed 1 --dtype bf16 -q -o build/demo/tiny-model
	$(call step,RUN,zturbo pack build/demo/tiny-model -o build/demo/tiny.zts)
	$(Q)$(BIN)/zturbo pack build/demo/tiny-model -o build/demo/tiny.zts -q
	$(call step,RUN,zturbo generate -m build/demo/tiny.zts -o build/demo/demo.png)
	$(Q)$(BIN)/zturbo generate -m build/demo/tiny.zts -p "a lighthouse on a cliff at sunset" --width 256 --height 256 \
	  --seed 42 -o build/demo/demo.png
	@echo "demo: wrote build/demo/demo.png from the store alone (random weights: expect structured noise, not a picture)"

test: deps-test print-arch $(TEST_BINS)
	@tests/run $(BIN)

# Fetches tokenizers==0.23.3 into build/tokenizer-venv and requests, openai into
# ~/.cache/zturbo/serve-venv (once each, from PyPI); without PyPI the tests skip.
ZT_ONLINE_TESTS := test_tokenizer_exact test_serve_clients
test-online: deps-online print-arch $(BIN)/zturbo $(BIN)/mkmodel
	@for t in $(ZT_ONLINE_TESTS); do ZT_TEST_ONLINE=1 ZT_TEST_FILTER=$$t tests/run $(BIN) || exit 1; done

asan: deps print-arch $(TEST_BINS)
	@ZT_TEST_SAN=1 tests/run $(BIN)

# libFuzzer harnesses: tests/fuzz/fuzz_*.c linked with the GPU-free modules
# (common/, storage/, the tokenizer, the server request parser and the image loader) built by clang with coverage.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIB_C := $(wildcard common/*.c storage/*.c) $(wildcard api/tokenizer*.c) api/server_request.c api/params.c \
              api/noise.c api/rng_torch.c api/image_in.c
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=bin/fuzz/%)
FUZZFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE -Wall -Wextra -Werror
bin/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_C) | deps-fuzz
	$(call step,FUZZCC,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZFLAGS) -o $@ $^ -Wl,-Bstatic -luring -ljpeg -Wl,-Bdynamic -lzstd -lpng -lxxhash -ljansson -lpthread -lm

# Each target runs for FUZZ_SECONDS; a crash, leak or timeout fails the make
# (tests/fuzz/run.sh keeps the log and the crashing input).
fuzz: deps-fuzz $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
