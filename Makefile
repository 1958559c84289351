# isopipe — build, test, deps, models, pipeline.
#
#   make                 build bin/<tool> for every tools/<tool>/ (CUDA too when nvcc is found)
#   make CUDA=0          CPU-only build
#   make DEVELOPER=1     -Wall -Wextra -Werror
#   make test            unit (C) + CLI (shell) tests; ends with "N passed, N failed, N skipped"
#   make test SANITIZE=address,undefined   the same under ASan+UBSan (separate build tree)
#   make deps            install the Debian packages building and running need (root); deps-dev: + tests, benchmarks
#   make models          fetch the default models into models/ (sha256-checked)
#   make models-wan      download the Wan2.1 weights for MODEL=wan into models/ (size- and sha256-checked, resumed)
#   make models LLM=qwen2.5-0.5b   ... and a larger prompt model (qwen2.5-0.5b, qwen2.5-1.5b)
#   make install PREFIX=/usr/local [DESTDIR=...]   tools, pipeline, docs, man pages; make uninstall
#   make fuzz            build libFuzzer targets (clang) into build/fuzz/
#   make pipeline TOPIC=sample_inputs/harbor.topic OUT=out/harbor
#   make slurm-pipeline TOPIC=... OUT=... [DRY_RUN=1] [WAIT=1]   the same graph as Slurm jobs (docs/slurm.md)
#
# Layout of outputs: a normal build writes build/ and bin/; a sanitizer build
# writes build-san/ (tools in build-san/bin) so the two never mix.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
CC         ?= cc
NVCC       ?= nvcc
PKGS       := libpng jansson libavcodec libavformat libavutil libswscale openblas

ifeq ($(strip $(SANITIZE)),)
  B        := build
  BINDIR   := bin
  CUDA     ?= auto
else
  B        := build-san
  BINDIR   := build-san/bin
  # ASan and the CUDA runtime do not mix well (shadow-gap mappings); the
  # sanitizer run covers the CPU code, which is all of it on a machine without a GPU.
  CUDA     := 0
endif

ifeq ($(CUDA),auto)
  CUDA := $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
endif

OPT        ?= -O2
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -pthread $(OPT) -g -fno-strict-aliasing \
               -DISOPIPE_VERSION='"$(VERSION)"' -Icommon
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS     := $(PKG_LIBS) -lm -ldl -lpthread
WARN       := -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation
ifeq ($(DEVELOPER),1)
  WARN     += -Werror
endif
ifneq ($(strip $(SANITIZE)),)
  CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS  += -fsanitize=$(SANITIZE)
endif
ifeq ($(CUDA),1)
  CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC))))
  CFLAGS_BASE += -DISOPIPE_CUDA=1
  NVCCFLAGS ?= -O2 -std=c++17 -Icommon -DISOPIPE_CUDA=1 -Xcompiler -fPIC \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90
  LDLIBS   += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/targets/x86_64-linux/lib -lcudart_static -lrt -lstdc++
endif
ALL_CFLAGS = $(CFLAGS_BASE) $(PKG_CFLAGS) $(WARN) $(CFLAGS)

# ---- sources: everything is discovered, so adding a file needs no Makefile edit
COMMON_C   := $(sort $(wildcard common/*.c))
COMMON_CU  := $(if $(filter 1,$(CUDA)),$(sort $(wildcard common/*.cu)))
COMMON_OBJ := $(COMMON_C:%.c=$(B)/%.o) $(COMMON_CU:%.cu=$(B)/%.cu.o)
LIB        := $(B)/libisopipe.a

TOOLS      := $(notdir $(patsubst %/,%,$(sort $(dir $(wildcard tools/*/main.c)))))
TOOL_BINS  := $(TOOLS:%=$(BINDIR)/%)

UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))
HELPER_BINS:= $(HELPER_SRC:tests/helpers/%.c=$(B)/tests/helpers/%)

all: $(TOOL_BINS)
	@echo "built $(words $(TOOL_BINS)) tools in $(BINDIR)/ (CUDA=$(CUDA))"

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# A tool is every .c (and .cu when CUDA=1) in its folder; tool-private
# object files are linked before the library so they may override nothing.
define TOOL_RULE
$(1)_C   := $$(sort $$(wildcard tools/$(1)/*.c))
$(1)_CU  := $$(if $$(filter 1,$$(CUDA)),$$(sort $$(wildcard tools/$(1)/*.cu)))
$(1)_OBJ := $$($(1)_C:%.c=$$(B)/%.o) $$($(1)_CU:%.cu=$$(B)/%.cu.o)
$$(BINDIR)/$(1): $$($(1)_OBJ) $$(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -pthread -o $$@ $$($(1)_OBJ) $$(LIB) $$(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call TOOL_RULE,$(t))))

# Objects built with and without -DISOPIPE_CUDA must never mix in one tree (a
# CUDA=0 build after a CUDA=1 one would link gpu.o's CUDA calls without
# gpu_cuda.cu.o): a stamp per CUDA setting rebuilds every object when it changes.
CUDA_STAMP := $(B)/.cuda-$(CUDA)
$(CUDA_STAMP):
	@mkdir -p $(B) && rm -f $(B)/.cuda-* && touch $@
$(COMMON_OBJ) $(foreach t,$(TOOLS),$($(t)_OBJ)): $(CUDA_STAMP)

# Unit tests may use a tool's private code: tests/unit/test_<tool>_*.c links
# tools/<tool>/*.c minus main.c.
define UNIT_RULE
$(B)/tests/$(1): tests/unit/$(1).c $$(LIB) $$(filter-out $$(B)/tools/%/main.o,$$(foreach t,$$(TOOLS),$$(if $$(findstring test_$$(subst -,_,$$(t))_,$(1)_),$$($$(t)_OBJ))))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) -Itests/unit $$(foreach t,$$(TOOLS),-Itools/$$(t)) $$(LDFLAGS) -o $$@ $$(filter-out $$(LIB),$$^) $$(LIB) $$(LDLIBS)
endef
$(foreach u,$(UNIT_SRC:tests/unit/%.c=%),$(eval $(call UNIT_RULE,$(u))))
# it compiles the AVX-512 kernels on SIMDe (tests/unit/quant_avx512_emu.h):
# 64-byte vectors by value without -mavx512f, which GCC reports as an ABI note
$(B)/tests/test_prompt_expand_quant: WARN += -Wno-psabi

$(B)/tests/helpers/%: tests/helpers/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

tests-build: $(TOOL_BINS) $(UNIT_BINS) $(HELPER_BINS)

test: test-deps tests-build
	@ISOPIPE_BIN=$(abspath $(BINDIR)) ISOPIPE_TESTBIN=$(abspath $(B)/tests) \
	  ISOPIPE_SANITIZE='$(SANITIZE)' ISOPIPE_CUDA_BUILD=$(CUDA) \
	  sh tests/run.sh $(TESTS)

# ---- fuzzing (clang + libFuzzer); FUZZ_SECONDS=N runs each target N seconds.
# FUZZ_SEED=S and FUZZ_RUNS=R make a run reproducible (CI): the same seed and
# committed seeds give the same inputs, R of them at most (fewer if the time
# runs out first: a prefix of the same sequence). Without them each run
# explores anew, which is what a long local run is for.
FUZZ_ARGS  := -max_total_time=$(FUZZ_SECONDS) $(if $(FUZZ_SEED),-seed=$(FUZZ_SEED)) $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS)) -rss_limit_mb=2048
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
# Fuzz builds are always CPU-only (no -DISOPIPE_CUDA, no CUDA runtime):
# common/*.c may call into common/*.cu only in CUDA builds.
FUZZ_CFLAGS:= $(filter-out -DISOPIPE_CUDA=1,$(CFLAGS_BASE)) $(PKG_CFLAGS) -DISOPIPE_FUZZ=1
build/fuzz/%: tests/fuzz/%.c $(COMMON_C) $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -Itools/prompt-expand -fsanitize=fuzzer,address,undefined -o $@ $< $(COMMON_C) $(PKG_LIBS) -lm -ldl -lpthread
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "fuzz target: $$f"; done
ifneq ($(FUZZ_SECONDS),)
	@st=0; for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  [ -d tests/fuzz/seeds/$$n ] && cp -n tests/fuzz/seeds/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null; \
	  echo "$$n:"; ASAN_OPTIONS=quarantine_size_mb=64 $$f $(FUZZ_ARGS) -print_final_stats=1 -artifact_prefix=build/fuzz/$$n- \
	    build/fuzz/corpus-$$n >build/fuzz/$$n.log 2>&1 || st=1; \
	  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Test unit written' build/fuzz/$$n.log; done; exit $$st
endif

# ---- set-up
deps:
	sh pipelines/deps.sh run

deps-dev:
	sh pipelines/deps.sh dev

# the tests' packages (ffprobe, clang, OpenCV, ...): installed when missing
test-deps:
	@sh pipelines/deps.sh dev --if-missing

# LLM reaches the script through the environment (a command-line variable is
# exported), never as shell text
models:
	sh pipelines/models.sh models

# the Wan2.1 weights for `make pipeline MODEL=wan` (docs/pipeline.md, "Wan models")
models-wan:
	sh pipelines/models-wan.sh $(or $(WAN_MODELS_DIR),models)

# the README's first command: a fresh machine to a finished sample video
SAMPLE_TOPIC ?= sample_inputs/harbor.topic
SAMPLE_OUT   ?= out/harbor
sample:
	$(MAKE) deps
	$(MAKE) models
	$(MAKE) all
	$(MAKE) pipeline TOPIC=$(SAMPLE_TOPIC) OUT=$(SAMPLE_OUT)
	@echo "sample: video $(SAMPLE_OUT)/final.mp4, report $(SAMPLE_OUT)/report.json and $(SAMPLE_OUT)/memory.png"

# ---- install: tools, the pipeline, docs and man pages under PREFIX; the
# tools find their models and data from their own location at run time, so
# DESTDIR staging and moving the tree both work. install-manifest lists every
# file put there (relative to PREFIX) and uninstall removes exactly those.
MAN_PAGES  := $(TOOLS:%=$(B)/man/%.1)
INST_SHARE := share/isopipe
INST_DOCS  := README.md $(sort $(wildcard docs/*.md docs/bench/*.md))
INST_FILES := $(TOOLS:%=bin/%) bin/isopipe-models bin/isopipe-pipeline \
              $(INST_SHARE)/Makefile $(INST_SHARE)/pipelines/travel.mk $(INST_SHARE)/pipelines/wan.mk $(INST_SHARE)/pipelines/batch.sh \
              $(INST_SHARE)/pipelines/models.sh $(INST_SHARE)/pipelines/models-wan.sh $(INST_SHARE)/pipelines/models-wan.list \
              $(TOOLS:%=share/man/man1/%.1) \
              $(INST_DOCS:%=share/doc/isopipe/%)

# man pages from the same text as --help (help2man runs each tool's --help and --version)
man: $(MAN_PAGES)
$(B)/man/%.1: $(BINDIR)/%
	@mkdir -p $(dir $@)
	@command -v help2man >/dev/null || { echo "make man: help2man is missing (make deps installs it)" >&2; exit 69; }
	help2man --no-info --no-discard-stderr --version-string=$(VERSION) \
	  --name="$$($< --help | sed -n 3p | sed 's/\.$$//')" -o $@ $<

install: all man
	@case '$(DESTDIR)$(PREFIX)' in *[[:space:]]*) echo "make install: '$(DESTDIR)$(PREFIX)' contains white space; the installed pipeline is a Makefile and Make cannot include a file by such a path: choose another PREFIX/DESTDIR" >&2; exit 64 ;; esac
	@set -e; D='$(DESTDIR)$(PREFIX)'; \
	install -d "$$D/bin" "$$D/$(INST_SHARE)/pipelines" "$$D/$(INST_SHARE)/models" "$$D/share/man/man1" \
	  "$$D/share/doc/isopipe/docs/bench"; \
	install -m 755 $(TOOL_BINS) "$$D/bin/"; \
	install -m 755 pipelines/installed/isopipe-models pipelines/installed/isopipe-pipeline "$$D/bin/"; \
	install -m 644 pipelines/installed/Makefile "$$D/$(INST_SHARE)/Makefile"; \
	install -m 644 pipelines/travel.mk pipelines/wan.mk "$$D/$(INST_SHARE)/pipelines/"; \
	install -m 755 pipelines/batch.sh pipelines/models.sh pipelines/models-wan.sh "$$D/$(INST_SHARE)/pipelines/"; \
	install -m 644 pipelines/models-wan.list "$$D/$(INST_SHARE)/pipelines/"; \
	install -m 644 $(MAN_PAGES) "$$D/share/man/man1/"; \
	for f in $(INST_DOCS); do install -m 644 "$$f" "$$D/share/doc/isopipe/$$f"; done; \
	printf '%s\n' $(INST_FILES) $(INST_SHARE)/install-manifest > "$$D/$(INST_SHARE)/install-manifest"; \
	echo "installed $(words $(INST_FILES)) files under $$D (list: $$D/$(INST_SHARE)/install-manifest)"

uninstall:
	@set -e; D='$(DESTDIR)$(PREFIX)'; m="$$D/$(INST_SHARE)/install-manifest"; \
	[ -f "$$m" ] || { echo "uninstall: no install manifest at '$$m' (nothing installed there)" >&2; exit 66; }; \
	n=0; while IFS= read -r f; do case "$$f" in ''|/*|*..*) continue ;; esac; \
	  if [ -f "$$D/$$f" ] || [ -L "$$D/$$f" ]; then rm -f "$$D/$$f"; n=$$((n + 1)); fi; done < "$$m"; \
	for d in share/doc/isopipe/docs/bench share/doc/isopipe/docs share/doc/isopipe $(INST_SHARE)/pipelines \
	         $(INST_SHARE)/models $(INST_SHARE) share/man/man1 share/man share/doc share bin; do \
	  rmdir "$$D/$$d" 2>/dev/null || true; done; \
	echo "uninstalled $$n files from $$D (models you fetched into $(INST_SHARE)/models are kept)"

clean:
	rm -rf build build-san bin

-include $(wildcard pipelines/*.mk)

.PHONY: all test test-deps tests-build fuzz deps deps-dev models models-wan install uninstall man clean sample
.DELETE_ON_ERROR:

-include $(shell find $(B) -type f -name '*.d' 2>/dev/null)
