/* Softmax, LayerNormalization and reductions over [outer, len, inner]. */

RF_KERNEL void rf_softmax(float *out, const float *x, ptrdiff_t outer, ptrdiff_t len, ptrdiff_t inner,
                          int log_softmax) {
  ptrdiff_t o, i, k;
  if (inner == 1 && !log_softmax) {
    /* The common case (the last axis): contiguous rows, loops that vectorize. */
    for (o = 0; o < outer; ++o) {
      const float *xs = x + o * len; /* out may be x: each element is read first */
      float *ys = out + o * len;
      float m = len > 0 ? rf_max(xs, len) : 0.0f, sum, inv;
      for (k = 0; k < len; ++k) ys[k] = rf_exp(xs[k] - m);
      sum = rf_sum(ys, len);
      inv = 1.0f / sum;
      for (k = 0; k < len; ++k) ys[k] *= inv;
    }
    return;
  }
  for (o = 0; o < outer; ++o)
    for (i = 0; i < inner; ++i) {
      const float *xs = x + o * len * inner + i;
      float *ys = out + o * len * inner + i;
      float m = -INFINITY, sum = 0.0f;
      for (k = 0; k < len; ++k) m = xs[k * inner] > m ? xs[k * inner] : m;
      for (k = 0; k < len; ++k) {
        float e = rf_exp(xs[k * inner] - m);
        ys[k * inner] = e;
        sum += e;
      }
      if (log_softmax) {
        float l = logf(sum);
        for (k = 0; k < len; ++k) ys[k * inner] = xs[k * inner] - m - l;
      } else {
        for (k = 0; k < len; ++k) ys[k * inner] /= sum;
      }
    }
}

/* Normalizes each of `outer` rows of `len` floats; scale and bias have len
 * elements (or NULL); mean and inv_std receive one value per row (or NULL). */
RF_KERNEL void rf_layer_norm(float *out, const float *x, ptrdiff_t outer, ptrdiff_t len,
                             const float *scale, const float *bias, float epsilon, float *mean_out,
                             float *inv_std_out) {
  ptrdiff_t o, k;
  for (o = 0; o < outer; ++o) {
    const float *xs = x + o * len;
    float *ys = out + o * len;
    float mean, var, inv;
    mean = rf_sum(xs, len) / (float)len;
    var = rf_sum_sq_dev(xs, len, mean) / (float)len;
    inv = 1.0f / sqrtf(var + epsilon);
    if (mean_out) mean_out[o] = mean;
    if (inv_std_out) inv_std_out[o] = inv;
    for (k = 0; k < len; ++k) {
      float v = (xs[k] - mean) * inv;
      if (scale) v *= scale[k];
      if (bias) v += bias[k];
      ys[k] = v;
    }
  }
}

enum { RF_REDUCE_SUM, RF_REDUCE_MEAN, RF_REDUCE_MAX, RF_REDUCE_MIN, RF_REDUCE_PROD, RF_REDUCE_L2, RF_REDUCE_SUM_SQUARE };

RF_KERNEL void rf_reduce(int op, float *out, const float *x, ptrdiff_t outer, ptrdiff_t len, ptrdiff_t inner) {
  ptrdiff_t o, i, k;
  for (o = 0; o < outer; ++o)
    for (i = 0; i < inner; ++i) {
      const float *xs = x + o * len * inner + i;
      float acc = op == RF_REDUCE_MAX ? -INFINITY : (op == RF_REDUCE_MIN ? INFINITY : (op == RF_REDUCE_PROD ? 1.0f : 0.0f));
      for (k = 0; k < len; ++k) {
        float v = xs[k * inner];
        switch (op) {
        case RF_REDUCE_MAX: acc = v > acc ? v : acc; break;
        case RF_REDUCE_MIN: acc = v < acc ? v : acc; break;
        case RF_REDUCE_PROD: acc *= v; break;
        case RF_REDUCE_L2: case RF_REDUCE_SUM_SQUARE: acc += v * v; break;
        default: acc += v; break;
        }
      }
      if (op == RF_REDUCE_MEAN) acc /= (float)len;
      if (op == RF_REDUCE_L2) acc = sqrtf(acc);
      out[o * inner + i] = acc;
    }
}

/* Resize of the two innermost dims of nc planes. mode: 0 nearest, 1 linear.
 * Coordinates are mapped per axis by the emitter's tables:
 * for nearest, src_y[oy] / src_x[ox] are the source indices; for linear,
 * y0/y1 with weight wy (and likewise x). */
RF_KERNEL void rf_resize_nearest(float *out, const float *x, ptrdiff_t nc, int h, int w, int oh, int ow,
                                 const int32_t *src_y, const int32_t *src_x) {
  ptrdiff_t p;
  int oy, ox;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * h * w;
    float *o = out + p * oh * ow;
    for (oy = 0; oy < oh; ++oy) {
      const float *row = in + (ptrdiff_t)src_y[oy] * w;
      for (ox = 0; ox < ow; ++ox) o[oy * ow + ox] = row[src_x[ox]];
    }
  }
}

RF_KERNEL void rf_resize_linear(float *out, const float *x, ptrdiff_t nc, int h, int w, int oh, int ow,
                                const int32_t *y0, const int32_t *y1, const float *wy,
                                const int32_t *x0, const int32_t *x1, const float *wx) {
  ptrdiff_t p;
  int oy, ox;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * h * w;
    float *o = out + p * oh * ow;
    for (oy = 0; oy < oh; ++oy) {
      const float *r0 = in + (ptrdiff_t)y0[oy] * w, *r1 = in + (ptrdiff_t)y1[oy] * w;
      float fy = wy[oy];
      for (ox = 0; ox < ow; ++ox) {
        float fx = wx[ox];
        float top = r0[x0[ox]] + (r0[x1[ox]] - r0[x0[ox]]) * fx;
        float bottom = r1[x0[ox]] + (r1[x1[ox]] - r1[x0[ox]]) * fx;
        o[oy * ow + ox] = top + (bottom - top) * fy;
      }
    }
  }
}
