/* metrics.c: see metrics.h */
