#include <stdio.h>

int main(void)
{
    puts("sauve " SAUVE_VERSION);
    return 0;
}
