/* ctl.c: see ctl.h */
int main(void) { return 0; }
