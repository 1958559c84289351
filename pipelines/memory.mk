# pipelines/memory.mk — memory runtime targets (included by the top Makefile).
#
#   make demo-vram [DEMO_GIB=2]
#       The demo every user writes to prove that cleanup works, done with
#       processes: A loads DEMO_GIB GiB of weights (beefy), holds them, exits;
#       B does the same; free VRAM is printed before, during and after each,
#       and vram-probe --wait-baseline proves it came back (within 64 MiB).
#       Without a GPU it runs on the pretend device (ISOPIPE_FAKE_GPU), where
#       a holder's VRAM is what it reports in the ledger.

DEMO_GIB ?= 2

demo-vram: $(BINDIR)/vram-probe $(B)/tests/helpers/rt_load
	@set -e; d=$$(mktemp -d "$${TMPDIR:-/tmp}/isopipe-demo-XXXXXX"); trap 'rm -rf "$$d"' EXIT INT TERM; \
	P=$(BINDIR)/vram-probe; L=$(B)/tests/helpers/rt_load; \
	if [ -z "$${ISOPIPE_FAKE_GPU:-}" ] && ! nvidia-smi -L >/dev/null 2>&1; then \
	    ISOPIPE_FAKE_GPU=24576:23000; export ISOPIPE_FAKE_GPU; \
	    echo "demo-vram: no GPU here: pretend device ISOPIPE_FAKE_GPU=$$ISOPIPE_FAKE_GPU (MiB total:free)"; fi; \
	ISOPIPE_LEDGER_DIR=$$d/ledger; export ISOPIPE_LEDGER_DIR; \
	free_mib() { $$P 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"]["free"] // 1048576)'; }; \
	used_mib() { $$P 2>/dev/null | python3 -c 'import json,sys; print(sum(e["used"] for e in json.load(sys.stdin)["ledger"]) // 1048576)'; }; \
	$$L --synth $$(($(DEMO_GIB) * 16)):67108864 -o $$d/w.safetensors 2>/dev/null; \
	base=$$(free_mib); echo "demo-vram: free VRAM at start: $$base MiB"; \
	for who in A B; do \
	    $$L --memory-mode beefy --hold 2 -q -o $$d/$$who.json $$d/w.safetensors & pid=$$!; \
	    i=0; while [ $$i -lt 300 ] && [ "$$(used_mib)" -lt $$(($(DEMO_GIB) * 1024)) ]; do sleep 0.1; i=$$((i + 1)); done; \
	    echo "demo-vram: process $$who (pid $$pid) holds $(DEMO_GIB) GiB: free VRAM $$(free_mib) MiB"; \
	    wait $$pid; \
	    if $$P --wait-baseline $$base --tolerance 64 --timeout 10 >/dev/null 2>&1; then \
	        echo "demo-vram: process $$who exited: free VRAM $$(free_mib) MiB (back at the start, within 64 MiB)"; \
	    else echo "demo-vram: process $$who exited but free VRAM is $$(free_mib) MiB, not back at $$base"; exit 1; fi; \
	done

.PHONY: demo-vram
