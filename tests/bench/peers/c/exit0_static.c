/* A program that exits at once, linked statically (the harness builds every
 * *_static.c with -static): the floor under launching a fresh program, with
 * no dynamic loader. */
int main(void) { return 0; }
