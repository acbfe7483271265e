# Makefile — builds build/libdisco.a, the `disco` tool and the test runner; `make deps`
# installs missing Debian packages; `make test [SAN=1]` runs the whole suite.

CC      := gcc
ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
DEPS_OK := $(shell sh tools/deps.sh >&2; echo $$?)
ifneq ($(DEPS_OK),0)
$(error make deps failed: see the message above)
endif
endif

LLVM_CONFIG := llvm-config-19
LLVM_CFLAGS := $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-D_GNU_SOURCE//')
LLVM_LIBS   := $(shell $(LLVM_CONFIG) --ldflags --libs 2>/dev/null)

OPT     ?= -O2
# AVX2 (x86-64-v3), tuned for this CPU: valgrind 3.19 cannot run AVX-512 code, and the C code
# here is the oracle and fallback; the JIT generates AVX-512 code for the host at run time.
ARCH    ?= -march=x86-64-v3 -mtune=native
CFLAGS  := -std=gnu11 -Wall -Wextra -Werror -fopenmp $(OPT) -g $(ARCH) -I. $(LLVM_CFLAGS)
LDLIBS  := $(LLVM_LIBS) -ldnnl -lxxhash -lpng -lz -lm

ifeq ($(SAN),1)
BUILD   := build/san
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build
endif

LIB_SRC  := $(wildcard ir/*.c ops/*.c frontend/*.c passes/*.c runtime/*.c runtime/ref/*.c codegen/*.c codegen/*/*.c models/*.c models/*/*.c)
TOOL_SRC := $(wildcard tools/*.c)
TEST_SRC := $(wildcard tests/*.c)
# bench/bench_util.c is linked into every benchmark; each other bench/NAME.c is one
BENCH_UTIL := bench/bench_util.c
BENCH_SRC := $(filter-out $(BENCH_UTIL),$(wildcard bench/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps test demo demo-images bench clean
.SECONDARY:

all: $(BUILD)/libdisco.a $(BUILD)/disco

deps:
	@sh tools/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libdisco.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/disco: $(TOOL_OBJ) $(BUILD)/libdisco.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/run_tests: $(TEST_OBJ) $(BUILD)/libdisco.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# bench/NAME.c -> $(BUILD)/bench/NAME; run them by hand (see bench/RESULTS.md)
bench: $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BENCH_UTIL:%.c=$(BUILD)/obj/%.o) $(BUILD)/libdisco.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test: $(BUILD)/run_tests $(BUILD)/disco
	DISCO=$(BUILD)/disco OMP_NUM_THREADS=2 $(BUILD)/run_tests

# the paper's toy experiment end to end (tools/demo.c): trains, samples, prints the table, writes
# out/demo/metrics.json, samples_*.npy and the PNGs
demo: all
	./$(BUILD)/disco demo --out out/demo

# DisCo-Diff on Fashion-MNIST end to end (tools/demo_images.sh, docs/images.md): trains EDM and
# DisCo-Diff, evaluates them, writes out/images/; QUICK=1 for the plumbing in a minute
demo-images: all
	DISCO=$(BUILD)/disco sh tools/demo_images.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_SRC:%.c=$(BUILD)/obj/%.d) $(BENCH_UTIL:%.c=$(BUILD)/obj/%.d)
