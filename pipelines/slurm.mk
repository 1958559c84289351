# pipelines/slurm.mk — the travel pipeline's stage graph as Slurm jobs
# (issue 12; docs/slurm.md). Included by the top Makefile.
#
#   make slurm-pipeline TOPIC=sample_inputs/harbor.topic OUT=out/harbor [DRY_RUN=1] [WAIT=1]
#   make slurm-batch TOPICS=sample_inputs OUT=out/batch [DRY_RUN=1] [WAIT=1]
#   make slurm-status OUT=out/harbor
#
# pipelines/slurm.sh does the work: it lets Make walk pipelines/travel.mk as
# `make pipeline` would, but with every stage's recipe recorded instead of run
# (the walk mode below), then submits one job per stage (a job array per
# kind of per-pair stage) with --dependency edges from the recorded
# prerequisites. Site knobs are TRAVEL_SLURM_* variables (docs/slurm.md);
# any TRAVEL_* variable of travel.mk applies as it does to `make pipeline`.
#
# TOPIC, OUT and TOPICS reach the script through the environment (Make
# exports command-line variables), never pasted into a recipe's shell text.

# travel.mk takes TOPIC and OUT's literal text (override :=, so they are
# simple variables that are never expanded again) and thereby stops Make
# from exporting them as command-line variables: export them here, and
# TOPICS the same literal way.
override TOPICS := $(value TOPICS)
export TOPIC OUT TOPICS

slurm-pipeline: pipeline-tools
	@sh pipelines/slurm.sh $(if $(strip $(DRY_RUN)),--dry-run) $(if $(strip $(WAIT)),--wait) --env

slurm-batch: pipeline-tools
	@sh pipelines/slurm.sh $(if $(strip $(DRY_RUN)),--dry-run) $(if $(strip $(WAIT)),--wait) --env-batch

slurm-status:
	@sh pipelines/slurm.sh --env-status

.PHONY: slurm-pipeline slurm-batch slurm-status

# ---- the walk (set by pipelines/slurm.sh only, after it has checked OUT)
# Every target under OUT except the bookkeeping in OUT/.travel is a stage
# output; its recipe calls $(TRAVEL_REPORT) (the stage runner, or the
# report), so within those recipes TRAVEL_REPORT becomes the recorder, which
# writes down the target, its prerequisites ($^) and the command, and runs
# nothing. `private`: the stamps a stage depends on still run for real.
ifneq ($(strip $(TRAVEL_SLURM_WALK)),)
TRAVEL_SLURM_O := $(patsubst %/,%,$(strip $(OUT)))
$(TRAVEL_SLURM_O)/%: private TRAVEL_REPORT = sh pipelines/slurm.sh --record $(TRAVEL_SLURM_WALK) $@ $^ -- $(TRAVEL_BIN)/pipeline-report
$(TRAVEL_SLURM_O)/.travel/%: private TRAVEL_REPORT = $(TRAVEL_BIN)/pipeline-report
endif
