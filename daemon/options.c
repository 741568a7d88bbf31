/* options.c: see options.h */
