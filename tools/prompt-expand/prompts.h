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

/* two example requests from two different videos, shown as earlier turns
 * of the conversation: the first shot of one, a later shot (with its
 * previous shot) of the other. Two subjects teach that the answer follows
 * the request's own video; with one, a small model copies its subject. */
#define PE_EXAMPLE1_TOPIC "a lighthouse on a stormy coast"
#define PE_EXAMPLE1_SHOT \
    "A white lighthouse stands on black rocks as grey storm waves crash below, " \
    "low clouds race past, and the camera slowly pushes in through the rain."
#define PE_EXAMPLE2_TOPIC "a cyclist crossing a city at sunrise"
#define PE_EXAMPLE2_PREV \
    "A cyclist in a yellow jacket rolls out of a quiet side street as the first orange light " \
    "touches the rooftops, and the camera tracks alongside."
#define PE_EXAMPLE2_SHOT \
    "The cyclist crosses a long steel bridge over the river while the low sun flares between the cables, " \
    "and the camera pulls back to a wide view of the waking city."
#endif
