/*
 * A pass-through stage that logs how far a long stream has got (bytes, rate)
 * every few seconds, so that a 3 am reader of a slow Job's log sees it
 * moving, and where it stopped.
 */
#ifndef SAUVE_PIPELINE_PROGRESS_H
#define SAUVE_PIPELINE_PROGRESS_H

#include "pipeline/stream.h"

/* label names the stream in the log ("postgres:app"); copied. */
stream *progress_stage(stream *next, const char *label, int interval_seconds);

#endif
