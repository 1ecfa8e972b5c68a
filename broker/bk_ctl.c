/* deskpoolctl - placeholder replaced by the CLI (see broker/README.md). */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "deskpoolctl: not built yet\n");
    return 1;
}
