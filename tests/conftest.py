import sys
from pathlib import Path

# tests share the closed-form games in known_games.py
sys.path.insert(0, str(Path(__file__).parent))
