/* mqtt.c: see mqtt.h */
