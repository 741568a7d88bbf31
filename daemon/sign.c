/* sign.c: see sign.h */
