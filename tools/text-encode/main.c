/* text-encode — placeholder until the umT5 encoder lands (issue 16): the
 * tokenizer (spm.c) is in, the tool is not. It refuses to run. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "text-encode: not implemented yet (issue 16)\n");
    return 69;
}
