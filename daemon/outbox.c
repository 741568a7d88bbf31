/* outbox.c: see outbox.h */
