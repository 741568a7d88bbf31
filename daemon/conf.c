/* conf.c: see conf.h */
