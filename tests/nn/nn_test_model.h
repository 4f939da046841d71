/* Builds small ONNX models in memory for the runtime's tests (protobuf-c messages packed to
 * bytes), so each test states its graph next to the values it expects. */
#ifndef CXR_NN_TEST_MODEL_H
#define CXR_NN_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

struct tm_model;

struct tm_model *tm_create(void);
void tm_destroy(struct tm_model *model);
void tm_input(struct tm_model *model, const char *name, uint32_t rank, const int64_t *dims);
void tm_output(struct tm_model *model, const char *name);
/* A float initializer; raw selects raw_data over float_data. Returns it for tweaks. */
Onnx__TensorProto *tm_initializer(struct tm_model *model, const char *name, uint32_t rank,
                                  const int64_t *dims, const float *values, int raw);
Onnx__TensorProto *tm_initializer_i64(struct tm_model *model, const char *name, uint32_t rank,
                                      const int64_t *dims, const int64_t *values);
/* inputs and outputs: comma-separated names ("" for an empty optional input). */
Onnx__NodeProto *tm_node(struct tm_model *model, const char *op, const char *name,
                         const char *inputs, const char *outputs);
void tm_attr_int(struct tm_model *model, Onnx__NodeProto *node, const char *name, int64_t value);
void tm_attr_float(struct tm_model *model, Onnx__NodeProto *node, const char *name, float value);
void tm_attr_ints(struct tm_model *model, Onnx__NodeProto *node, const char *name, size_t count,
                  const int64_t *values);
void tm_attr_string(struct tm_model *model, Onnx__NodeProto *node, const char *name,
                    const char *value);
void tm_metadata(struct tm_model *model, const char *key, const char *value);
/* Serialised ModelProto, malloc'ed. */
unsigned char *tm_pack(struct tm_model *model, size_t *size);

#endif
