/* util.c: see util.h */
