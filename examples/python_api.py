"""Build a storyboard in Python and render it on the preview backend.

    python examples/python_api.py [OUT.mp4]
"""

import sys

import longvid

story = longvid.Storyboard(
    "The Lighthouse Keeper",
    fps=24,
    width=832,
    height=480,
    seed=1234,
    style="cinematic, 35mm film, moody light",
)
story.character("keeper", "an old lighthouse keeper with a grey beard and a yellow raincoat")
story.shot("establishing", "a lighthouse on a cliff at dusk, waves crashing", duration=4, camera="push-in")
story.shot("climb", "{keeper} climbs the spiral stairs holding a lantern", duration=6).keyframe(
    at=6, prompt="{keeper} reaches the lamp room"
).crossfade(0.5)
story.shot("storm", "storm clouds gather over the sea, lightning", duration=5)

output = sys.argv[1] if len(sys.argv) > 1 else "lighthouse_python.mp4"
manifest = longvid.render(story, output)
print(f"wrote {output}: {manifest['video']['frames']} frames")
