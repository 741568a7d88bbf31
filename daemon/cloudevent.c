/* cloudevent.c: see cloudevent.h */
