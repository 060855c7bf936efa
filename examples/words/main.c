/* main.c — the words example's entry point; the program lives in app.c. */
#include "app.h"

int main(int argc, char **argv)
{
    return words_main(argc, argv);
}
