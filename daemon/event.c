/* event.c: see event.h */
