# pipelines/travel.mk — the "travel between images" pipeline as Make targets
# (issue 7; docs/pipeline.md). Included by the top Makefile.
#
#   make pipeline TOPIC=sample_inputs/harbor.topic OUT=out/harbor [-j N]
#
# Stages and their targets (each one a file that exists only once its stage
# published it atomically, so Make never sees half a stage):
#   OUT/scenes.json                  prompt-expand (LLM), one prompt per segment
#   OUT/flow/pair_NNN/flow.json      flow-extract --pair --backward, per keyframe pair
#   OUT/segments/seg_NNN/segment.json segment-gen, one process per segment
#   OUT/final.mp4 + OUT/stitch.json  stitch
#   OUT/report.json + OUT/memory.png pipeline-report
# Bookkeeping lives in OUT/.travel: vars.mk (the topic as Make variables,
# checked on every run), args/* (one stamp per stage holding its parameters,
# rewritten only when they change, so editing the topic or choosing another
# model re-runs exactly the stages it touches), records/* (the stage
# runner's wall time, exit code, retries, VRAM check) and run.log.
#
# Every variable of this file starts with TRAVEL_ (the top Makefile owns the
# short names); TOPIC and OUT are the user's.

TRAVEL_MK_DIR           := $(dir $(lastword $(MAKEFILE_LIST)))
TRAVEL_BIN              ?= $(BINDIR)
TRAVEL_MODE             ?= auto
TRAVEL_LLM              ?= SmolLM2-135M-Instruct.Q4_1.gguf
# MODEL=wan: the Wan2.1 stages of pipelines/wan.mk instead of the keyframe morph.
# Only from the command line: a MODEL in the user's environment (a common
# name) must not change what `make pipeline` does.
override MODEL          := $(if $(filter command line,$(origin MODEL)),$(value MODEL))
TRAVEL_WAN              := $(if $(filter wan,$(MODEL)),1)
TRAVEL_SEG_MODEL        ?= $(if $(TRAVEL_WAN),wan,morph)
# segment models that estimate motion themselves: no flow stage for them
TRAVEL_NO_FLOW_MODELS   ?= rife
TRAVEL_FLOW_PRESET      ?= medium
TRAVEL_CRF              ?= 18
TRAVEL_X264_PRESET      ?= medium
TRAVEL_THREADS          ?=
TRAVEL_WAIT_VRAM        ?= 600
TRAVEL_BASELINE_TIMEOUT ?= 30

# TOPIC and OUT are file names, often from a directory listing
# (pipelines/batch.sh): never Make code. A command-line or environment
# variable is recursive, so `TOPIC=x$(shell cmd).topic` would run cmd the
# moment anything expands it -- including Make exporting it to a recipe's
# environment. Take their literal text ($(value)), once, before anything
# else sees them, and accept only characters Make and sh carry as data
# (the same set pipeline-report topic-vars accepts for keyframes).
override TOPIC := $(value TOPIC)
override OUT   := $(value OUT)
TRAVEL_SAFE_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z \
                     0 1 2 3 4 5 6 7 8 9 . _ - / + @
# $(call travel_unsafe,TEXT): what is left of TEXT once every safe character is gone (empty: safe)
travel_unsafe = $(if $(1),$(call travel_unsafe,$(wordlist 2,999,$(1)),$(subst $(firstword $(1)),,$(2))),$(2))
# $(call travel_check,NAME,TEXT): one clear line and no run when TEXT cannot be carried
travel_check = $(if $(or $(call travel_unsafe,$(TRAVEL_SAFE_CHARS),$(2)),$(filter-out 1,$(words $(2))),$(filter -%,$(2))),\
  $(error make pipeline: $(1) '$(2)' has a character the Make driver cannot carry (spaces, quotes, $$ ` : and the like) or starts with '-'; use letters, digits and ._-/+@))

TRAVEL_GOALS := pipeline $(if $(TRAVEL_WAN),pipeline-keyframes)
ifneq ($(filter $(TRAVEL_GOALS) pipeline-clean,$(MAKECMDGOALS)),)
$(if $(filter-out wan,$(MODEL)),$(error make pipeline: MODEL '$(MODEL)' is not known: MODEL=wan, or leave it out for the keyframe morph))
ifeq ($(strip $(TOPIC)),)
$(error make pipeline: say which topic, e.g. TOPIC=sample_inputs/harbor.topic OUT=out/harbor)
endif
$(call travel_check,TOPIC,$(TOPIC))
$(if $(OUT),$(call travel_check,OUT,$(OUT)))
TRAVEL_OUT    := $(patsubst %/,%,$(or $(strip $(OUT)),out/$(basename $(notdir $(TOPIC)))))
$(call travel_check,OUT,$(TRAVEL_OUT))
TRAVEL_D      := $(TRAVEL_OUT)/.travel
TRAVEL_REPORT := $(TRAVEL_BIN)/pipeline-report
TRAVEL_RUN     = $(TRAVEL_REPORT) --task-id travel run --dir $(TRAVEL_D) --probe $(TRAVEL_BIN)/vram-probe \
                 --baseline-timeout $(TRAVEL_BASELINE_TIMEOUT) --memory-mode $(TRAVEL_MODE)
TRAVEL_COMMON  = $(if $(strip $(TRAVEL_THREADS)),--threads $(TRAVEL_THREADS)) --wait-vram $(TRAVEL_WAIT_VRAM)
# stitch loads no model and uses no GPU: it takes --threads and nothing that waits for VRAM
TRAVEL_STITCH_COMMON = $(if $(strip $(TRAVEL_THREADS)),--threads $(TRAVEL_THREADS))

ifneq ($(filter $(TRAVEL_GOALS),$(MAKECMDGOALS)),)
# The topic, read by the same parser as the tools (common/topic.h), as Make
# variables. The rule runs on every invocation (travel-force) so a missing
# keyframe or a bad value stops the run before any stage starts; the file is
# rewritten only when it changes, so Make restarts only then.
# A rejected topic is one line: the check's message is kept in topic.err and
# vars.mk says TRAVEL_TOPIC_REJECTED (rewritten, so Make restarts); the
# restarted Make stops with that message ($(shell) output is text, never
# expanded again). On the first pass an old rejection is ignored: the rule
# runs again and decides.
include $(TRAVEL_D)/vars.mk
ifneq ($(TRAVEL_TOPIC_REJECTED),)
ifneq ($(MAKE_RESTARTS),)
$(error $(shell grep -v '^$$' $(TRAVEL_D)/topic.err 2>/dev/null | tail -n 1) (exit $(TRAVEL_TOPIC_REJECTED)))
endif
endif
endif
$(TRAVEL_D)/vars.mk: $(TRAVEL_REPORT) travel-force
	@mkdir -p $(TRAVEL_D)
	@if $(TRAVEL_REPORT) -q --task-id travel topic-vars --seg-model $(TRAVEL_SEG_MODEL) $(TRAVEL_VARS_EXTRA) \
	    --prompt-topic $(TRAVEL_D)/prompt.topic -o $@ $(TOPIC) 2>$(TRAVEL_D)/topic.err; then rm -f $(TRAVEL_D)/topic.err; \
	 else echo "TRAVEL_TOPIC_REJECTED := $$?" > $@; fi

# The model file Make depends on, found the way model_find() finds it
# (common/model.h): a path, else $ISOPIPE_MODELS, ./models, <prefix>/share.
# Missing: no dependency, and the prompt stage itself exits 69 naming every
# path it tried.
# the tools' own model lookup order (common/model.h), with TRAVEL_BIN as the executable's directory
TRAVEL_MODEL_DIRS ?= $(subst :, ,$(ISOPIPE_MODELS)) $(or $(XDG_DATA_HOME),$(HOME)/.local/share)/isopipe/models \
                     $(TRAVEL_BIN)/../share/isopipe/models $(TRAVEL_BIN)/../models
TRAVEL_LLM_FILE := $(firstword $(wildcard $(TRAVEL_LLM) $(foreach d,$(TRAVEL_MODEL_DIRS),$(d)/$(TRAVEL_LLM) $(d)/$(TRAVEL_LLM).gguf)))

ifeq ($(TRAVEL_WAN),1)
TRAVEL_WAN_INCLUDE := 1
include $(TRAVEL_MK_DIR)wan.mk
TRAVEL_WAN_INCLUDE :=
else
TRAVEL_SEG_DIRS   = $(foreach s,$(TRAVEL_SEGS),$(TRAVEL_OUT)/segments/seg_$(s))
TRAVEL_SEG_JSONS  = $(TRAVEL_SEG_DIRS:%=%/segment.json)
TRAVEL_FLOW       = $(if $(filter $(TRAVEL_NO_FLOW_MODELS),$(TRAVEL_SEG_MODEL)),,yes)
TRAVEL_FLOW_JSONS = $(if $(TRAVEL_FLOW),$(foreach s,$(TRAVEL_SEGS),$(TRAVEL_OUT)/flow/pair_$(s)/flow.json))

# ---- prompt stage
TRAVEL_PROMPT_ARGS = -m $(or $(TRAVEL_LLM_FILE),$(TRAVEL_LLM)) --segments $(TRAVEL_NSEG) --seed $(TRAVEL_SEED)
$(TRAVEL_D)/args/prompt: travel-force
	@$(TRAVEL_REPORT) -q stamp $@ -- $(TRAVEL_PROMPT_ARGS)
$(TRAVEL_OUT)/scenes.json: $(TRAVEL_D)/prompt.topic $(TRAVEL_D)/args/prompt $(TRAVEL_BIN)/prompt-expand $(TRAVEL_LLM_FILE)
	$(TRAVEL_RUN) --name prompt --kind prompt --json $@ --sweep $(TRAVEL_OUT) -- \
	  $(TRAVEL_BIN)/prompt-expand $(TRAVEL_PROMPT_ARGS) $(TRAVEL_COMMON) -o $@ $(TRAVEL_D)/prompt.topic

# ---- flow and segment stages, one rule each per keyframe pair NNN
define TRAVEL_PAIR_RULES
TRAVEL_FLOW_ARGS_$(1) = --pair $$(TRAVEL_A_$(1)) $$(TRAVEL_B_$(1)) --backward --preset $$(TRAVEL_FLOW_PRESET)
$$(TRAVEL_D)/args/flow_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- $$(TRAVEL_FLOW_ARGS_$(1))
$$(TRAVEL_OUT)/flow/pair_$(1)/flow.json: $$(TRAVEL_A_$(1)) $$(TRAVEL_B_$(1)) $$(TRAVEL_D)/args/flow_$(1) $$(TRAVEL_BIN)/flow-extract
	@mkdir -p $$(TRAVEL_OUT)/flow
	$$(TRAVEL_RUN) --name flow_$(1) --kind flow --json $$@ --sweep $$(TRAVEL_OUT)/flow -- \
	  $$(TRAVEL_BIN)/flow-extract $$(TRAVEL_FLOW_ARGS_$(1)) $$(TRAVEL_COMMON) -o $$(TRAVEL_OUT)/flow/pair_$(1)

TRAVEL_SEG_ARGS_$(1) = -m $$(TRAVEL_SEG_MODEL) --start $$(TRAVEL_A_$(1)) --end $$(TRAVEL_B_$(1)) \
  $$(if $$(TRAVEL_FLOW),--flow $$(TRAVEL_OUT)/flow/pair_$(1)/flow_00000.flo --flow-back $$(TRAVEL_OUT)/flow/pair_$(1)/flow_bwd_00000.flo) \
  --frames $$(TRAVEL_FRAMES) --fps $$(TRAVEL_FPS) --seed $$(TRAVEL_SEED) \
  --scenes $$(TRAVEL_OUT)/scenes.json --index $$(TRAVEL_IDX_$(1))
$$(TRAVEL_D)/args/seg_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- $$(TRAVEL_SEG_ARGS_$(1))
$$(TRAVEL_OUT)/segments/seg_$(1)/segment.json: $$(TRAVEL_OUT)/scenes.json $$(if $$(TRAVEL_FLOW),$$(TRAVEL_OUT)/flow/pair_$(1)/flow.json) \
    $$(TRAVEL_A_$(1)) $$(TRAVEL_B_$(1)) $$(TRAVEL_D)/args/seg_$(1) $$(TRAVEL_BIN)/segment-gen
	@mkdir -p $$(TRAVEL_OUT)/segments
	$$(TRAVEL_RUN) --name seg_$(1) --kind segment --json $$@ --sweep $$(TRAVEL_OUT)/segments -- \
	  $$(TRAVEL_BIN)/segment-gen $$(TRAVEL_SEG_ARGS_$(1)) $$(TRAVEL_COMMON) -o $$(TRAVEL_OUT)/segments/seg_$(1)
endef
$(foreach s,$(TRAVEL_SEGS),$(eval $(call TRAVEL_PAIR_RULES,$(s))))

# ---- stitch
TRAVEL_STITCH_ARGS = --overlap $(TRAVEL_OVERLAP) --fps $(TRAVEL_FPS) --crf $(TRAVEL_CRF) --preset $(TRAVEL_X264_PRESET)
$(TRAVEL_D)/args/stitch: travel-force
	@$(TRAVEL_REPORT) -q stamp $@ -- $(TRAVEL_STITCH_ARGS) $(TRAVEL_SEGS)
$(TRAVEL_OUT)/final.mp4 $(TRAVEL_OUT)/stitch.json &: $(TRAVEL_SEG_JSONS) $(TRAVEL_D)/args/stitch $(TRAVEL_BIN)/stitch
	$(TRAVEL_RUN) --name stitch --kind stitch --json $(TRAVEL_OUT)/stitch.json --sweep $(TRAVEL_OUT) -- \
	  $(TRAVEL_BIN)/stitch $(TRAVEL_STITCH_ARGS) $(TRAVEL_STITCH_COMMON) --report $(TRAVEL_OUT)/stitch.json \
	  -o $(TRAVEL_OUT)/final.mp4 $(TRAVEL_SEG_DIRS)

# ---- report
TRAVEL_REPORT_STAGES = prompt=$(TRAVEL_OUT)/scenes.json \
  $(if $(TRAVEL_FLOW),$(foreach s,$(TRAVEL_SEGS),flow_$(s)=$(TRAVEL_OUT)/flow/pair_$(s)/flow.json)) \
  $(foreach s,$(TRAVEL_SEGS),seg_$(s)=$(TRAVEL_OUT)/segments/seg_$(s)/segment.json) \
  stitch=$(TRAVEL_OUT)/stitch.json
$(TRAVEL_OUT)/report.json $(TRAVEL_OUT)/memory.png &: $(TRAVEL_OUT)/final.mp4 $(TRAVEL_OUT)/stitch.json $(TRAVEL_REPORT)
	$(TRAVEL_REPORT) -q report --dir $(TRAVEL_D) --png $(TRAVEL_OUT)/memory.png -o $(TRAVEL_OUT)/report.json \
	  $(TRAVEL_REPORT_STAGES)

pipeline: $(TRAVEL_OUT)/report.json
	@echo "travel: $(TRAVEL_OUT)/final.mp4 ($(TRAVEL_TOTAL_FRAMES) frames at $(TRAVEL_FPS) fps), report: $(TRAVEL_OUT)/report.json, $(TRAVEL_OUT)/memory.png"

endif # MODEL=wan

pipeline-clean:
	rm -rf $(TRAVEL_OUT)
endif

# the tools a run needs, built once (pipelines/batch.sh calls this before
# starting runs side by side)
pipeline-tools: $(addprefix $(TRAVEL_BIN)/,pipeline-report prompt-expand flow-extract segment-gen stitch vram-probe \
                  $(if $(TRAVEL_WAN),text-encode vae))

# no recipe, never a file: a prerequisite that makes its target's (cheap,
# write-if-changed) recipe run on every invocation
travel-force:

.PHONY: pipeline pipeline-clean pipeline-tools
