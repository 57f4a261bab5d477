"""Bad-data handling shared by every source: check, then raise or skip-and-count.

A source yields "checked elements": the example keys (audio float32 [None],
pitch / velocity / instrument / instrument_family / instrument_source int32)
plus
  file    string  where the example came from,
  index   int64   its record index in that file (-1 for an end-of-file marker),
  error   int32   a REASONS code of what is wrong with it (0: nothing),
  detail  string  a human sentence about it,
  lost    int64   how many records were lost just before it (unparseable or
                  corrupt bytes found while reading the file),
  lost_reason int32, lost_detail string  the same for those.

`handle_bad_examples` then either raises `InvalidArgumentError` whose message
names the file and record index ("bad example in F, record N: ..."), or, with
skip, drops the bad ones, prints one warning line for each, and adds them to a
`BadExampleStats` counter. End-of-file markers are dropped in both cases.
"""

import sys

import tensorflow as tf

REASONS = ('ok', 'missing_key', 'wrong_audio_length', 'wrong_sample_rate',
           'non_finite_audio', 'corrupt_record', 'unparseable_record',
           'unreadable_file')
OK, MISSING_KEY, WRONG_LENGTH, WRONG_RATE, NON_FINITE, CORRUPT, UNPARSEABLE, \
    UNREADABLE = range(len(REASONS))

_HINT = ' (set skip_bad_examples=true to skip and count bad examples)'


class BadExampleStats:
  """Counts of skipped bad examples, by reason (a CPU int64 variable)."""

  def __init__(self):
    # A plain ResourceVariable on the host: created outside any distribution
    # strategy's variable creator, so tf.data functions may update it.
    from tensorflow.python.ops import resource_variable_ops  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    with tf.init_scope(), tf.device('/cpu:0'):
      self._counts = resource_variable_ops.ResourceVariable(
          tf.zeros([len(REASONS)], tf.int64), trainable=False,
          name='bad_example_counts')

  def add(self, reason, n=1):
    """Adds `n` (int64 tensor or int) skipped examples of REASONS code."""
    return self._counts.scatter_add(tf.IndexedSlices(
        tf.reshape(tf.cast(n, tf.int64), [1]),
        tf.reshape(tf.cast(reason, tf.int32), [1])))

  def counts(self):
    """{reason: count} of the reasons seen so far (Python ints)."""
    values = self._counts.numpy().tolist()
    return {r: int(v) for r, v in zip(REASONS, values) if v and r != 'ok'}

  @property
  def total(self):
    return int(sum(self.counts().values()))


def default_extras(file, index=-1):
  """The check fields of an element that has no problem."""
  return {
      'file': tf.convert_to_tensor(file, tf.string),
      'index': tf.cast(index, tf.int64),
      'error': tf.constant(OK, tf.int32),
      'detail': tf.constant('', tf.string),
      'lost': tf.constant(0, tf.int64),
      'lost_reason': tf.constant(OK, tf.int32),
      'lost_detail': tf.constant('', tf.string),
  }


def check_example(el, audio_length, rates=None, present=None):
  """Sets el['error'] / el['detail'] from the example's own content.

  Args:
    el: a checked element (see module doc); audio float32 [None].
    audio_length: samples needed; shorter audio is bad (longer is trimmed).
    rates: optional (record's sample rate, the config's) int64 scalars; a
      difference is bad.
    present: optional dict key -> bool tensor (key found in the record).

  Returns:
    el with 'error' and 'detail' set (first problem found wins).
  """
  el = dict(el)
  checks = []  # (bad, code, detail) in priority order
  if present:
    names = tf.constant(list(present))
    missing = tf.logical_not(tf.stack([present[k] for k in present]))
    checks.append((tf.reduce_any(missing), MISSING_KEY, tf.strings.join([
        'missing or malformed key(s) ',
        tf.strings.reduce_join(tf.boolean_mask(names, missing), separator=',')
    ])))
  if rates is not None:
    rate, expected = rates
    checks.append((tf.not_equal(rate, expected), WRONG_RATE, tf.strings.format(
        'sample_rate {} in the record, the config needs {}', (rate, expected))))
  n = tf.size(el['audio'], out_type=tf.int64)
  checks.append((n < audio_length, WRONG_LENGTH, tf.strings.format(
      'audio has {} samples, audio_length needs at least {}',
      (n, tf.constant(audio_length, tf.int64)))))
  checks.append((tf.logical_not(tf.reduce_all(tf.math.is_finite(el['audio']))),
                 NON_FINITE, tf.constant('audio holds NaN or Inf')))
  error, detail = el['error'], el['detail']
  for bad, code, text in reversed(checks):
    error = tf.where(bad, tf.constant(code, tf.int32), error)
    detail = tf.where(bad, text, detail)
  is_marker = el['index'] < 0
  el['error'] = tf.where(is_marker, el['error'], error)
  el['detail'] = tf.where(is_marker, el['detail'], detail)
  return el


def _message(file, index, detail):
  return tf.strings.join(['bad example in ', file, ', record ',
                          tf.strings.as_string(index), ': ', detail])


def handle_bad_examples(dataset, skip, stats=None):
  """Raises on (or, with `skip`, drops and counts) bad checked elements.

  Args:
    dataset: of checked elements (module doc).
    skip: bool; False raises InvalidArgumentError naming file and record.
    stats: `BadExampleStats` updated when skipping (optional).

  Returns:
    The dataset of good elements, still with the check fields.
  """
  def strict(el):
    lost_assert = tf.debugging.Assert(tf.equal(el['lost'], 0), [
        tf.strings.join(['bad data in ', el['file'], ': ', el['lost_detail'],
                         _HINT])], summarize=1)
    bad_assert = tf.debugging.Assert(tf.equal(el['error'], OK), [
        _message(el['file'], el['index'], el['detail'] + _HINT)], summarize=1)
    with tf.control_dependencies([lost_assert, bad_assert]):
      return tf.nest.map_structure(tf.identity, el)

  def count(el):
    ops = []
    has_lost = el['lost'] > 0
    bad = tf.not_equal(el['error'], OK)

    def log_lost():
      deps = [tf.print('gansynth data: skipping bad data in', el['file'],
                       ':', el['lost_detail'], output_stream=sys.stderr)]
      if stats is not None:
        deps.append(stats.add(el['lost_reason'], el['lost']))
      with tf.control_dependencies(deps):
        return tf.constant(0)

    def log_bad():
      deps = [tf.print('gansynth data: skipping', _message(
          el['file'], el['index'], el['detail']), output_stream=sys.stderr)]
      if stats is not None:
        deps.append(stats.add(el['error'], 1))
      with tf.control_dependencies(deps):
        return tf.constant(0)

    ops.append(tf.cond(has_lost, log_lost, lambda: tf.constant(0)))
    ops.append(tf.cond(bad, log_bad, lambda: tf.constant(0)))
    with tf.control_dependencies(ops):
      return tf.nest.map_structure(tf.identity, el)

  if skip:
    dataset = dataset.map(count).filter(
        lambda el: tf.equal(el['error'], OK))
  else:
    dataset = dataset.map(strict)
  return dataset.filter(lambda el: el['index'] >= 0)
