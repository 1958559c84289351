/* prompts.h — the default instruction prompt-expand gives the model and the
 * worked example it shows before each request (few-shot: a 135M model
 * copies the shape of an answer far more reliably than it follows a rule).
 * --system FILE replaces PE_SYSTEM; the example stays. */
#ifndef ISOPIPE_PROMPTS_H
#define ISOPIPE_PROMPTS_H

#define PE_SYSTEM \
    "You write shot descriptions for a short video. Each answer is one sentence of 15 to 40 words " \
    "that describes what the camera sees: the subject, the setting, the light and the motion. " \
    "Each shot continues the previous one in the same visual style. Answer with the sentence only."

/* one example video of two shots, shown as earlier turns of the conversation */
#define PE_EXAMPLE_TOPIC "a lighthouse on a stormy coast"
#define PE_EXAMPLE_SHOT1 \
    "A white lighthouse stands on black rocks as grey storm waves crash below, " \
    "low clouds race past, and the camera slowly pushes in through the rain."
#define PE_EXAMPLE_SHOT2 \
    "The lighthouse beam sweeps across the churning sea at dusk, lighting the spray in pale gold, " \
    "while the camera tilts up to follow it into the dark clouds."
#endif
