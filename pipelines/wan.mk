# pipelines/wan.mk — `make pipeline TOPIC=... OUT=... MODEL=wan`: travel
# between keyframes with Wan2.1 (docs/pipeline.md, "Wan"). Included by
# pipelines/travel.mk, which owns TOPIC/OUT, the topic check (vars.mk), the
# stage runner and the report; this file has only the Wan stages.
#
# Stages (each one process, one Make target published atomically):
#   OUT/scenes.json                        prompt-expand: one prompt per segment
#   OUT/keyprompts.json                    prompt-expand: one prompt per keyframe (no keyframes in the topic)
#   OUT/text.json (+ text.safetensors)     text-encode: every prompt and the negative, one process
#   OUT/keyframes/gen_NNN/segment.json     segment-gen -m WAN_T2V --frames 1 (no keyframes in the topic)
#   OUT/keyframes/key_NNN/vae.json         vae decode: the keyframe image frame_00000.png
#   OUT/vace/ctx_NNN.json (+ .safetensors) vae encode --vace: start keyframe (or the previous
#                                          segment's last WAN_KEEP_FRAMES frames), end keyframe
#   OUT/gen/seg_NNN/segment.json           segment-gen -m WAN_DIT --vace-context (latents)
#   OUT/segments/seg_NNN/vae.json          vae decode: the segment's frames
#   OUT/final.mp4 + OUT/stitch.json        stitch
# A segment depends on its own prompt embedding's digest
# (.travel/emb/seg_NNN, pipeline-report tensor-stamp), not on the whole
# text file: editing one prompt re-runs that segment only.

ifeq ($(TRAVEL_WAN_INCLUDE),1)

# the models, each a name on the model path (common/model.h) or a path
WAN_DIT        ?= wan2.1-vace-1.3b
WAN_T2V        ?= wan2.1-t2v-1.3b
WAN_VAE        ?= wan2.1-vae
UMT5           ?= umt5-xxl
UMT5_TOKENIZER ?=
# K > 0: a segment starts from the last K frames of the previous one (4k+1
# frames... any K < frames) instead of its start keyframe; segments then run
# one after the other and an edit re-runs every segment after it
WAN_KEEP_FRAMES ?= 0
WAN_VACE_SCALE  ?= 1
# --max-tokens of each prompt prompt-expand writes
WAN_PROMPT_TOKENS ?= 96

# taken literally and checked like TOPIC and OUT: they reach the tools' command lines
override WAN_DIT        := $(value WAN_DIT)
override WAN_T2V        := $(value WAN_T2V)
override WAN_VAE        := $(value WAN_VAE)
override UMT5           := $(value UMT5)
override UMT5_TOKENIZER := $(value UMT5_TOKENIZER)
override WAN_KEEP_FRAMES := $(value WAN_KEEP_FRAMES)
override WAN_VACE_SCALE := $(value WAN_VACE_SCALE)
override WAN_PROMPT_TOKENS := $(value WAN_PROMPT_TOKENS)
$(foreach v,WAN_DIT WAN_T2V WAN_VAE UMT5 WAN_KEEP_FRAMES WAN_VACE_SCALE WAN_PROMPT_TOKENS,$(call travel_check,$(v),$($(v))))
$(if $(UMT5_TOKENIZER),$(call travel_check,UMT5_TOKENIZER,$(UMT5_TOKENIZER)))
$(if $(filter-out 0 1 2 3 4 5 6 7 8 9,$(subst 0,0 ,$(subst 1,1 ,$(subst 2,2 ,$(subst 3,3 ,$(subst 4,4 ,$(subst 5,5 ,$(subst 6,6 ,$(subst 7,7 ,$(subst 8,8 ,$(subst 9,9 ,$(WAN_KEEP_FRAMES)))))))))))),\
  $(error make pipeline MODEL=wan: WAN_KEEP_FRAMES '$(WAN_KEEP_FRAMES)' is not a number of frames))

TRAVEL_VARS_EXTRA = --wan-model WAN_DIT=$(WAN_DIT) --wan-model WAN_T2V=$(WAN_T2V) --wan-model WAN_VAE=$(WAN_VAE) \
  --wan-model UMT5=$(UMT5) --wan-model UMT5_TOKENIZER=$(UMT5_TOKENIZER) \
  --key-topic $(TRAVEL_D)/keys.topic --negative $(TRAVEL_D)/negative.txt

ifneq ($(filter pipeline pipeline-keyframes,$(MAKECMDGOALS)),)

# keyframe NNN: the topic's, or generated
WAN_KEY = $(if $(WAN_GEN_KEYS),$(TRAVEL_OUT)/keyframes/key_$(1)/frame_00000.png,$(TRAVEL_KEY_$(1)))
WAN_KEY_DEP = $(if $(WAN_GEN_KEYS),$(TRAVEL_OUT)/keyframes/key_$(1)/vae.json,$(TRAVEL_KEY_$(1)))
WAN_TEXT  = $(TRAVEL_OUT)/text.safetensors
WAN_WH    = --width $(TRAVEL_WIDTH) --height $(TRAVEL_HEIGHT)
WAN_SAMPLE = --steps $(WAN_STEPS) --guidance $(WAN_GUIDANCE) --shift $(WAN_SHIFT) --sampler $(WAN_SAMPLER)

# ---- prompts: one per segment, and one per generated keyframe
WAN_PROMPT_ARGS = -m $(or $(TRAVEL_LLM_FILE),$(TRAVEL_LLM)) --segments $(TRAVEL_NSEG) --seed $(TRAVEL_SEED) --max-tokens $(WAN_PROMPT_TOKENS)
$(TRAVEL_D)/args/prompt: travel-force
	@$(TRAVEL_REPORT) -q stamp $@ -- $(WAN_PROMPT_ARGS)
$(TRAVEL_OUT)/scenes.json: $(TRAVEL_D)/prompt.topic $(TRAVEL_D)/args/prompt $(TRAVEL_BIN)/prompt-expand $(TRAVEL_LLM_FILE)
	$(TRAVEL_RUN) --name prompt --kind prompt --json $@ --sweep $(TRAVEL_OUT) -- \
	  $(TRAVEL_BIN)/prompt-expand $(WAN_PROMPT_ARGS) $(TRAVEL_COMMON) -o $@ $(TRAVEL_D)/prompt.topic

WAN_KEYPROMPT_ARGS = -m $(or $(TRAVEL_LLM_FILE),$(TRAVEL_LLM)) --segments $(TRAVEL_NKEY) --seed $(TRAVEL_SEED) --max-tokens $(WAN_PROMPT_TOKENS)
$(TRAVEL_D)/args/prompt_keys: travel-force
	@$(TRAVEL_REPORT) -q stamp $@ -- $(WAN_KEYPROMPT_ARGS)
$(TRAVEL_OUT)/keyprompts.json: $(TRAVEL_D)/keys.topic $(TRAVEL_D)/args/prompt_keys $(TRAVEL_BIN)/prompt-expand $(TRAVEL_LLM_FILE)
	$(TRAVEL_RUN) --name prompt_keys --kind prompt --json $@ --sweep $(TRAVEL_OUT) -- \
	  $(TRAVEL_BIN)/prompt-expand $(WAN_KEYPROMPT_ARGS) $(TRAVEL_COMMON) -o $@ $(TRAVEL_D)/keys.topic

# ---- text: every prompt (segments 0..NSEG-1, then keyframes) and the negative, one process.
# The negative prompt is data: it goes from the topic to .travel/negative.txt
# (pipeline-report) and from there to text-encode as one argument ("$(cat)"
# is not evaluated again by sh).
WAN_TEXT_ARGS = -m $(UMT5_PATH) $(if $(UMT5_TOKENIZER_PATH),--tokenizer $(UMT5_TOKENIZER_PATH)) \
  --scenes $(TRAVEL_OUT)/scenes.json $(if $(WAN_GEN_KEYS),--scenes $(TRAVEL_OUT)/keyprompts.json)
$(TRAVEL_D)/args/text: travel-force
	@$(TRAVEL_REPORT) -q stamp $@ -- $(WAN_TEXT_ARGS) negative=$(WAN_NEGATIVE_SET)
$(TRAVEL_OUT)/text.json: $(TRAVEL_OUT)/scenes.json $(if $(WAN_GEN_KEYS),$(TRAVEL_OUT)/keyprompts.json) \
    $(TRAVEL_D)/negative.txt $(TRAVEL_D)/args/text $(TRAVEL_BIN)/text-encode $(UMT5_PATH) $(UMT5_TOKENIZER_PATH)
	$(TRAVEL_RUN) --name text --kind text --json $@ --sweep $(TRAVEL_OUT) -- \
	  $(TRAVEL_BIN)/text-encode $(WAN_TEXT_ARGS) $(if $(WAN_NEGATIVE_SET),--negative "$$(cat $(TRAVEL_D)/negative.txt)") \
	  $(TRAVEL_COMMON) --report $@ -o $(WAN_TEXT)

# the digest of one prompt's embedding and the negative's: what a stage that
# reads prompt.I really depends on
define WAN_EMB_RULE
$$(TRAVEL_D)/emb/$(1): travel-force | $$(TRAVEL_OUT)/text.json
	@mkdir -p $$(TRAVEL_D)/emb
	@$$(TRAVEL_REPORT) -q tensor-stamp $$@ $$(WAN_TEXT) prompt.$(2) $$(if $$(filter-out 1,$$(WAN_GUIDANCE)),negative)
endef

# ---- generated keyframes: T2V, one frame, then decode
define WAN_KEY_RULES
WAN_KEYGEN_ARGS_$(1) = -m $$(WAN_T2V_PATH) --text $$(WAN_TEXT) --index $$(WAN_KEYIDX_$(1)) \
  --frames 1 $$(WAN_WH) $$(WAN_SAMPLE) --seed $$(WAN_KEYSEED_$(1))
$$(TRAVEL_D)/args/key_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- $$(WAN_KEYGEN_ARGS_$(1))
$$(TRAVEL_OUT)/keyframes/gen_$(1)/segment.json: $$(TRAVEL_D)/emb/key_$(1) $$(TRAVEL_D)/args/key_$(1) \
    $$(TRAVEL_BIN)/segment-gen $$(WAN_T2V_PATH)
	@mkdir -p $$(TRAVEL_OUT)/keyframes
	$$(TRAVEL_RUN) --name key_$(1) --kind keyframe --json $$@ --sweep $$(TRAVEL_OUT)/keyframes -- \
	  $$(TRAVEL_BIN)/segment-gen $$(WAN_KEYGEN_ARGS_$(1)) $$(TRAVEL_COMMON) -o $$(TRAVEL_OUT)/keyframes/gen_$(1)
$$(TRAVEL_D)/args/keydec_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- -m $$(WAN_VAE_PATH)
$$(TRAVEL_OUT)/keyframes/key_$(1)/vae.json: $$(TRAVEL_OUT)/keyframes/gen_$(1)/segment.json $$(TRAVEL_D)/args/keydec_$(1) \
    $$(TRAVEL_BIN)/vae $$(WAN_VAE_PATH)
	$$(TRAVEL_RUN) --name keydec_$(1) --kind decode --json $$@ --sweep $$(TRAVEL_OUT)/keyframes -- \
	  $$(TRAVEL_BIN)/vae decode -m $$(WAN_VAE_PATH) $$(TRAVEL_COMMON) $$(TRAVEL_OUT)/keyframes/gen_$(1) \
	  -o $$(TRAVEL_OUT)/keyframes/key_$(1)
endef
$(if $(WAN_GEN_KEYS),$(foreach k,$(TRAVEL_KEYS),$(eval $(call WAN_EMB_RULE,key_$(k),$(WAN_KEYIDX_$(k))))))
$(if $(WAN_GEN_KEYS),$(foreach k,$(TRAVEL_KEYS),$(eval $(call WAN_KEY_RULES,$(k)))))

# ---- segments: VACE context, VACE DiT, decode
# segment NNN goes from keyframe NNN to keyframe NNN+1 (TRAVEL_KEYS lists 000..NKEY-1)
define WAN_SEG_RULES
WAN_NEXT_$(1) := $$(TRAVEL_NEXT_$(1))
WAN_PREV_$(1) := $$(TRAVEL_PREV_$(1))
WAN_CHAIN_$(1) := $$(if $$(and $$(filter-out 0,$$(WAN_KEEP_FRAMES)),$$(WAN_PREV_$(1))),yes)
WAN_CTX_ARGS_$(1) = -m $$(WAN_VAE_PATH) --vace \
  $$(if $$(WAN_CHAIN_$(1)),--keep $$(TRAVEL_OUT)/segments/seg_$$(WAN_PREV_$(1)) --keep-frames $$(WAN_KEEP_FRAMES),--start $$(call WAN_KEY,$(1))) \
  --end $$(call WAN_KEY,$$(WAN_NEXT_$(1))) --frames $$(TRAVEL_FRAMES)
$$(TRAVEL_D)/args/ctx_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- $$(WAN_CTX_ARGS_$(1))
$$(TRAVEL_OUT)/vace/ctx_$(1).json: $$(if $$(WAN_CHAIN_$(1)),$$(TRAVEL_OUT)/segments/seg_$$(WAN_PREV_$(1))/vae.json,$$(call WAN_KEY_DEP,$(1))) \
    $$(call WAN_KEY_DEP,$$(WAN_NEXT_$(1))) $$(TRAVEL_D)/args/ctx_$(1) $$(TRAVEL_BIN)/vae $$(WAN_VAE_PATH)
	@mkdir -p $$(TRAVEL_OUT)/vace
	$$(TRAVEL_RUN) --name ctx_$(1) --kind vace --json $$@.part --sweep $$(TRAVEL_OUT)/vace -- \
	  $$(TRAVEL_BIN)/vae encode $$(WAN_CTX_ARGS_$(1)) $$(TRAVEL_COMMON) -o $$(TRAVEL_OUT)/vace/ctx_$(1).safetensors \
	  > $$@.part && mv -f $$@.part $$@

WAN_SEG_ARGS_$(1) = -m $$(WAN_DIT_PATH) --text $$(WAN_TEXT) --index $$(TRAVEL_IDX_$(1)) \
  --vace-context $$(TRAVEL_OUT)/vace/ctx_$(1).safetensors --vace-scale $$(WAN_VACE_SCALE) \
  --frames $$(TRAVEL_FRAMES) $$(WAN_WH) $$(WAN_SAMPLE) --seed $$(TRAVEL_SEED_$(1))
$$(TRAVEL_D)/args/seg_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- $$(WAN_SEG_ARGS_$(1))
$$(TRAVEL_OUT)/gen/seg_$(1)/segment.json: $$(TRAVEL_OUT)/vace/ctx_$(1).json $$(TRAVEL_D)/emb/seg_$(1) \
    $$(TRAVEL_D)/args/seg_$(1) $$(TRAVEL_BIN)/segment-gen $$(WAN_DIT_PATH)
	@mkdir -p $$(TRAVEL_OUT)/gen
	$$(TRAVEL_RUN) --name seg_$(1) --kind segment --json $$@ --sweep $$(TRAVEL_OUT)/gen -- \
	  $$(TRAVEL_BIN)/segment-gen $$(WAN_SEG_ARGS_$(1)) $$(TRAVEL_COMMON) -o $$(TRAVEL_OUT)/gen/seg_$(1)

$$(TRAVEL_D)/args/dec_$(1): travel-force
	@$$(TRAVEL_REPORT) -q stamp $$@ -- -m $$(WAN_VAE_PATH)
$$(TRAVEL_OUT)/segments/seg_$(1)/vae.json: $$(TRAVEL_OUT)/gen/seg_$(1)/segment.json $$(TRAVEL_D)/args/dec_$(1) \
    $$(TRAVEL_BIN)/vae $$(WAN_VAE_PATH)
	@mkdir -p $$(TRAVEL_OUT)/segments
	$$(TRAVEL_RUN) --name dec_$(1) --kind decode --json $$@ --sweep $$(TRAVEL_OUT)/segments -- \
	  $$(TRAVEL_BIN)/vae decode -m $$(WAN_VAE_PATH) $$(TRAVEL_COMMON) $$(TRAVEL_OUT)/gen/seg_$(1) \
	  -o $$(TRAVEL_OUT)/segments/seg_$(1)
endef
$(foreach s,$(TRAVEL_SEGS),$(eval $(call WAN_EMB_RULE,seg_$(s),$(TRAVEL_IDX_$(s)))))
$(foreach s,$(TRAVEL_SEGS),$(eval $(call WAN_SEG_RULES,$(s))))

# ---- stitch and report
WAN_SEG_DIRS = $(foreach s,$(TRAVEL_SEGS),$(TRAVEL_OUT)/segments/seg_$(s))
TRAVEL_STITCH_ARGS = --overlap $(TRAVEL_OVERLAP) --fps $(TRAVEL_FPS) --crf $(TRAVEL_CRF) --preset $(TRAVEL_X264_PRESET)
$(TRAVEL_D)/args/stitch: travel-force
	@$(TRAVEL_REPORT) -q stamp $@ -- $(TRAVEL_STITCH_ARGS) $(TRAVEL_SEGS)
$(TRAVEL_OUT)/final.mp4 $(TRAVEL_OUT)/stitch.json &: $(WAN_SEG_DIRS:%=%/vae.json) $(TRAVEL_D)/args/stitch $(TRAVEL_BIN)/stitch
	$(TRAVEL_RUN) --name stitch --kind stitch --json $(TRAVEL_OUT)/stitch.json --sweep $(TRAVEL_OUT) -- \
	  $(TRAVEL_BIN)/stitch $(TRAVEL_STITCH_ARGS) $(TRAVEL_STITCH_COMMON) --report $(TRAVEL_OUT)/stitch.json \
	  -o $(TRAVEL_OUT)/final.mp4 $(WAN_SEG_DIRS)

TRAVEL_REPORT_STAGES = prompt=$(TRAVEL_OUT)/scenes.json \
  $(if $(WAN_GEN_KEYS),prompt_keys=$(TRAVEL_OUT)/keyprompts.json) text=$(TRAVEL_OUT)/text.json \
  $(if $(WAN_GEN_KEYS),$(foreach k,$(TRAVEL_KEYS),key_$(k)=$(TRAVEL_OUT)/keyframes/gen_$(k)/segment.json \
    keydec_$(k)=$(TRAVEL_OUT)/keyframes/key_$(k)/vae.json)) \
  $(foreach s,$(TRAVEL_SEGS),ctx_$(s)=$(TRAVEL_OUT)/vace/ctx_$(s).json seg_$(s)=$(TRAVEL_OUT)/gen/seg_$(s)/segment.json \
    dec_$(s)=$(TRAVEL_OUT)/segments/seg_$(s)/vae.json) \
  stitch=$(TRAVEL_OUT)/stitch.json
$(TRAVEL_OUT)/report.json $(TRAVEL_OUT)/memory.png &: $(TRAVEL_OUT)/final.mp4 $(TRAVEL_OUT)/stitch.json $(TRAVEL_REPORT)
	$(TRAVEL_REPORT) -q report --dir $(TRAVEL_D) --png $(TRAVEL_OUT)/memory.png -o $(TRAVEL_OUT)/report.json \
	  $(TRAVEL_REPORT_STAGES)

# the keyframes alone (a topic without keyframes): prompts, text, T2V, decode
pipeline-keyframes: $(if $(WAN_GEN_KEYS),$(foreach k,$(TRAVEL_KEYS),$(TRAVEL_OUT)/keyframes/key_$(k)/vae.json))
	@echo "travel (wan): keyframes $(foreach k,$(TRAVEL_KEYS),$(call WAN_KEY,$(k)))"

pipeline: $(TRAVEL_OUT)/report.json
	@echo "travel (wan): $(TRAVEL_OUT)/final.mp4 ($(TRAVEL_TOTAL_FRAMES) frames at $(TRAVEL_FPS) fps), report: $(TRAVEL_OUT)/report.json, $(TRAVEL_OUT)/memory.png"
endif
endif

.PHONY: pipeline-keyframes
