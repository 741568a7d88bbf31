/* log.c: see log.h */
